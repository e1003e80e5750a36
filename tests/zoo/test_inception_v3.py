"""Inception-v3: parameters derived module by module, grid sizes, and the paper's "< 25 million"."""

import pytest
import torch

import cnnarch
from cnnarch import CnnarchError
from cnnarch.zoo.inception_v3 import InceptionOutputs

Conv = tuple[int, int, int, int]  # (in, out, kh, kw); every conv has BN (2 x out) and no bias


def inception_a(c: int, pool: int) -> list[Conv]:
    branch5x5 = [(c, 48, 1, 1), (48, 64, 5, 5)]
    branch3x3dbl = [(c, 64, 1, 1), (64, 96, 3, 3), (96, 96, 3, 3)]
    return [(c, 64, 1, 1), *branch5x5, *branch3x3dbl, (c, pool, 1, 1)]


def inception_b(c: int) -> list[Conv]:
    return [(c, 384, 3, 3), (c, 64, 1, 1), (64, 96, 3, 3), (96, 96, 3, 3)]


def inception_c(c: int, c7: int) -> list[Conv]:
    single = [(c, c7, 1, 1), (c7, c7, 1, 7), (c7, 192, 7, 1)]
    double = [(c, c7, 1, 1), (c7, c7, 7, 1), (c7, c7, 1, 7), (c7, c7, 7, 1), (c7, 192, 1, 7)]
    return [(c, 192, 1, 1), *single, *double, (c, 192, 1, 1)]


def inception_d(c: int) -> list[Conv]:
    branch3x3 = [(c, 192, 1, 1), (192, 320, 3, 3)]
    branch7x7x3 = [(c, 192, 1, 1), (192, 192, 1, 7), (192, 192, 7, 1), (192, 192, 3, 3)]
    return [*branch3x3, *branch7x7x3]


def inception_e(c: int) -> list[Conv]:
    split = [(384, 384, 1, 3), (384, 384, 3, 1)]
    branch3x3 = [(c, 384, 1, 1), *split]
    branch3x3dbl = [(c, 448, 1, 1), (448, 384, 3, 3), *split]
    return [(c, 320, 1, 1), *branch3x3, *branch3x3dbl, (c, 192, 1, 1)]


STEM: list[Conv] = [(3, 32, 3, 3), (32, 32, 3, 3), (32, 64, 3, 3), (64, 80, 1, 1), (80, 192, 3, 3)]
BODY = (
    STEM
    + inception_a(192, 32)  # -> 64 + 64 + 96 + 32 = 256
    + inception_a(256, 64)  # -> 288
    + inception_a(288, 64)  # -> 288
    + inception_b(288)  # -> 384 + 96 + 288 = 768
    + inception_c(768, 128)
    + inception_c(768, 160)
    + inception_c(768, 160)
    + inception_c(768, 192)
    + inception_d(768)  # -> 320 + 192 + 768 = 1280
    + inception_e(1280)  # -> 320 + 768 + 768 + 192 = 2048
    + inception_e(2048)
)
AUX: list[Conv] = [(768, 128, 1, 1), (128, 768, 5, 5)]


def params(convs: list[Conv]) -> int:
    return sum(c_in * c_out * kh * kw + 2 * c_out for c_in, c_out, kh, kw in convs)


MAIN = params(BODY) + 2048 * 1000 + 1000
WITH_AUX = MAIN + params(AUX) + 768 * 1000 + 1000


def meta(**kwargs):
    with torch.device("meta"):
        return cnnarch.create_model("inception_v3", **kwargs)


def test_parameters_derived_by_hand_and_the_papers_less_than_25_million() -> None:
    assert (MAIN, WITH_AUX) == (23_834_568, 27_161_264)
    assert sum(p.numel() for p in meta(aux_logits=False).parameters()) == MAIN
    assert sum(p.numel() for p in meta().parameters()) == WITH_AUX
    # "less than 25 million parameters" holds without the auxiliary head only.
    assert MAIN < 25_000_000 < WITH_AUX


def test_grid_sizes_at_299() -> None:
    model = meta().eval()
    sizes = {}
    for name in ("maxpool2", "Mixed_5d", "Mixed_6e", "Mixed_7c"):
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: sizes.__setitem__(name, tuple(out.shape[1:]))
        )
    assert model(torch.empty(1, 3, 299, 299, device="meta")).shape == (1, 1000)
    assert sizes == {
        "maxpool2": (192, 35, 35),
        "Mixed_5d": (288, 35, 35),
        "Mixed_6e": (768, 17, 17),
        "Mixed_7c": (2048, 8, 8),
    }


def smallest_input(out: int, layers: list[tuple[int, int]]) -> int:
    """Smallest input giving `out` after unpadded (kernel, stride) layers, last layer first."""
    for kernel, stride in layers:
        out = (out - 1) * stride + kernel
    return out


# From the 17x17 grid back to the input: Mixed_6a 3x3/2, maxpool2 3x3/2, Conv2d_4a 3x3,
# Conv2d_3b 1x1, maxpool1 3x3/2, (Conv2d_2b is padded), Conv2d_2a 3x3, Conv2d_1a 3x3/2.
TO_17x17 = [(3, 2), (3, 2), (3, 1), (1, 1), (3, 2), (3, 1), (3, 2)]


@pytest.mark.slow
def test_minimum_input_in_eval_and_in_training_with_the_auxiliary_head() -> None:
    # Eval: Mixed_7a's stride-2 3x3 convs need a 3x3 grid at 17x17's place.
    eval_side = smallest_input(3, TO_17x17)
    # Training: the aux head's 5x5/3 pool then 5x5 conv need 17x17 there.
    train_side = smallest_input(smallest_input(5, [(5, 3)]), TO_17x17)
    assert (eval_side, train_side) == (75, 299)
    assert cnnarch.model_card("inception_v3").min_input_size == eval_side
    model = meta(num_classes=10)
    with pytest.raises(CnnarchError, match="smallest input this model accepts is 299x299"):
        model.train()(torch.empty(2, 3, 298, 298, device="meta"))


def test_training_output_has_the_auxiliary_logits() -> None:
    model = meta(num_classes=10).train()
    out = model(torch.empty(2, 3, 299, 299, device="meta"))
    assert isinstance(out, InceptionOutputs) and [t.shape for t in out] == [(2, 10)] * 2
    assert meta(num_classes=10, aux_logits=False).train()(
        torch.empty(2, 3, 299, 299, device="meta")
    ).shape == (2, 10)
