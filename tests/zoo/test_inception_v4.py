"""Inception-v4: parameters derived from Figures 3-9, MACs of a block by hand, the paper's
readings (the stem's stride, the factorization order) and no residual connection."""

import pytest
import torch

import cnnarch
from zoo.arithmetic import (
    Conv,
    bn_conv_params,
    conv_macs,
    linear_params,
    module_macs,
    pytorch_params,
)

# Figure 3, the stem: three convs, then the three filter concatenations.
STEM: list[Conv] = [
    *[(3, 32, 3, 3), (32, 32, 3, 3), (32, 64, 3, 3)],
    (64, 96, 3, 3),  # beside the 3x3/2 max pool: 64 + 96 = 160
    *[(160, 64, 1, 1), (64, 96, 3, 3)],  # 96
    *[(160, 64, 1, 1), (64, 64, 7, 1), (64, 64, 1, 7), (64, 96, 3, 3)],  # 96 + 96 = 192
    (192, 192, 3, 3),  # beside the max pool: 192 + 192 = 384
]
# Figure 4 at 35x35x384: 96 + 96 + 96 + 96 = 384.
INCEPTION_A: list[Conv] = [
    (384, 96, 1, 1),
    *[(384, 64, 1, 1), (64, 96, 3, 3)],
    *[(384, 64, 1, 1), (64, 96, 3, 3), (96, 96, 3, 3)],
    (384, 96, 1, 1),  # after the average pool
]
# Figure 7 with Table 1's k=192, l=224, m=256, n=384: 384 + 256 + 384 (pooled) = 1024.
REDUCTION_A: list[Conv] = [(384, 384, 3, 3), (384, 192, 1, 1), (192, 224, 3, 3), (224, 256, 3, 3)]
# Figure 5 at 17x17x1024: 384 + 256 + 256 + 128 = 1024.
INCEPTION_B: list[Conv] = [
    (1024, 384, 1, 1),
    *[(1024, 192, 1, 1), (192, 224, 1, 7), (224, 256, 7, 1)],
    *[(1024, 192, 1, 1), (192, 192, 1, 7), (192, 224, 7, 1), (224, 224, 1, 7), (224, 256, 7, 1)],
    (1024, 128, 1, 1),
]
# Figure 8: 192 + 320 + 1024 (pooled) = 1536.
REDUCTION_B: list[Conv] = [
    *[(1024, 192, 1, 1), (192, 192, 3, 3)],
    *[(1024, 256, 1, 1), (256, 256, 1, 7), (256, 320, 7, 1), (320, 320, 3, 3)],
]
# Figure 6 at 8x8x1536: 256 + 2 x 256 + 2 x 256 + 256 = 1536.
INCEPTION_C: list[Conv] = [
    (1536, 256, 1, 1),
    *[(1536, 384, 1, 1), (384, 256, 1, 3), (384, 256, 3, 1)],
    *[(1536, 384, 1, 1), (384, 448, 1, 3), (448, 512, 3, 1), (512, 256, 1, 3), (512, 256, 3, 1)],
    (1536, 256, 1, 1),
]
CONVS = STEM + 4 * INCEPTION_A + REDUCTION_A + 7 * INCEPTION_B + REDUCTION_B + 3 * INCEPTION_C
PARAMS = bn_conv_params(CONVS) + linear_params(1536, 1000)


def meta(variant: str = "paper", **kwargs):
    with torch.device("meta"):
        return cnnarch.create_model("inception_v4", variant=variant, **kwargs)


@pytest.mark.parametrize("variant", ["paper", "timm"])
def test_parameters_derived_from_the_figures(variant: str) -> None:
    assert PARAMS == 42_679_816
    assert pytorch_params("inception_v4", variant=variant) == PARAMS
    assert pytorch_params("inception_v4", variant=variant, num_classes=10) == (
        PARAMS - linear_params(1536, 1000) + linear_params(1536, 10)
    )


def test_macs_of_inception_a_and_reduction_a_by_hand() -> None:
    summary = cnnarch.analyze("inception_v4")
    # Every conv of Inception-A keeps the 35x35 grid: (384*96 + 384*64 + 64*96*9 + 384*64
    # + 64*96*9 + 96*96*9 + 384*96) * 35*35 = 316,416 * 1225.
    assert module_macs(summary, "inception_a.0") == conv_macs(INCEPTION_A, 35) == 387_609_600
    # Reduction-A: the stride-2 convs give 17x17, (384*384*9 + 224*256*9) * 289; the 1x1 and
    # the first 3x3 stay at 35x35, (384*192 + 192*224*9) * 1225.
    by_hand = conv_macs([REDUCTION_A[0], REDUCTION_A[3]], 17) + conv_macs(REDUCTION_A[1:3], 35)
    assert by_hand == 1_843_200 * 289 + 460_800 * 1225
    assert module_macs(summary, "reduction_a") == by_hand
    assert summary.total_params == PARAMS


def grids(model: torch.nn.Module, names: list[str]) -> dict[str, tuple[int, ...]]:
    sizes = {}
    for name in names:
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: sizes.__setitem__(name, tuple(out.shape[1:]))
        )
    model.eval()(torch.empty(1, 3, 299, 299, device="meta"))
    return sizes


def test_the_stems_last_conv_has_stride_2_giving_figure_3s_35x35x384() -> None:
    # Reading: Figure 3 prints "3x3 Conv (192 V)" with no stride, yet 35x35x384 after it.
    model = meta()
    assert model.stem.mixed_5a.conv.conv.stride == (2, 2)
    assert grids(
        model, ["stem.mixed_3a", "stem.mixed_4a", "stem", "reduction_a", "inception_c"]
    ) == {
        "stem.mixed_3a": (160, 73, 73),
        "stem.mixed_4a": (192, 71, 71),
        "stem": (384, 35, 35),
        "reduction_a": (1024, 17, 17),
        "inception_c": (1536, 8, 8),
    }


def test_factorized_convolutions_run_in_the_figures_order_and_timms_in_the_released_one() -> None:
    paper, timm = meta("paper"), meta("timm")
    shape = lambda model, key: tuple(model.state_dict()[key].shape)  # noqa: E731
    # Stem, Figure 3: 7x1 then 1x7 (timm: 1x7 then 7x1).
    assert shape(paper, "stem.mixed_4a.branch1.1.conv.weight") == (64, 64, 7, 1)
    assert shape(timm, "features.4.branch1.1.conv.weight") == (64, 64, 1, 7)
    # Inception-B, Figure 5: the five-conv branch starts with a 1x7 (timm: a 7x1).
    assert shape(paper, "inception_b.0.branch2.1.conv.weight") == (192, 192, 1, 7)
    assert shape(timm, "features.11.branch2.1.conv.weight") == (192, 192, 7, 1)
    # Inception-C, Figure 6: 1x3 448 then 3x1 512 (timm: 3x1 448 then 1x3 512).
    assert shape(paper, "inception_c.0.branch2_1.conv.weight") == (448, 384, 1, 3)
    assert shape(timm, "features.19.branch2_1.conv.weight") == (448, 384, 3, 1)
    assert shape(paper, "inception_c.0.branch2_2.conv.weight") == (512, 448, 3, 1)


def test_the_paper_variant_is_named_as_the_paper_names_its_blocks() -> None:
    model = meta()
    assert [name for name, _ in model.named_children()] == [
        *("stem", "inception_a", "reduction_a", "inception_b", "reduction_b", "inception_c"),
        *("avgpool", "dropout", "fc"),
    ]
    assert (len(model.inception_a), len(model.inception_b), len(model.inception_c)) == (4, 7, 3)
    assert model.dropout.p == pytest.approx(0.2)  # keep 0.8
    assert meta("timm").head_drop.p == 0.0  # timm's default
    assert not any("aux" in name.lower() for name, _ in model.named_modules())


@pytest.mark.parametrize(
    ("name", "variant"),
    [("inception_v3", "paper"), ("inception_v4", "paper"), ("inception_v4", "timm")],
)
def test_inception_v3_and_v4_have_no_residual_addition(name: str, variant: str) -> None:
    summary = cnnarch.analyze(name, variant=variant)
    assert len(summary.residuals) == 0


def test_the_card_has_table_2() -> None:
    card = cnnarch.model_card("inception_v4")
    assert card.input_size == (3, 299, 299)
    assert card.variants == ("paper", "timm")
    assert card.published["table2_top1_top5_error"]["inception_v4"] == [20.0, 5.0]
    assert card.paper.arxiv == "1602.07261"
    assert "Inception-ResNet-v2 matches the raw cost of Inception-v4" in card.published["text"]


def smallest_input(out: int, layers: list[tuple[int, int]]) -> int:
    """Smallest input giving `out` after unpadded (kernel, stride) layers, last layer first."""
    for kernel, stride in layers:
        out = (out - 1) * stride + kernel
    return out


@pytest.mark.slow
def test_minimum_input() -> None:
    # Reduction-B, Reduction-A, the stem's 3x3/2, 3x3 V and 3x3/2 splits, conv2 V, conv1 3x3/2
    # (the "same" convs and blocks between them keep the size).
    layers = [(3, 2), (3, 2), (3, 2), (3, 1), (3, 2), (3, 1), (3, 2)]
    assert cnnarch.model_card("inception_v4").min_input_size == smallest_input(1, layers) == 75
