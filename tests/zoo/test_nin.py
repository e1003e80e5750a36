"""Network in Network and BN-NIN: parameters and grids derived from their definitions, the MACs
of an mlpconv layer by hand, and BN-NIN against Canziani et al.'s figures."""

import pytest
import torch

import cnnarch
from zoo.arithmetic import Conv, conv_macs, conv_params, linear_params, module_macs, pytorch_params


def mlpconv(c_in: int, width: int, c_out: int, kernel: int) -> list[Conv]:
    """A kxk conv, then the micro network's two 1x1 convs."""
    return [(c_in, width, kernel, kernel), (width, width, 1, 1), (width, c_out, 1, 1)]


NIN_CONVS = [
    *mlpconv(3, 96, 96, 11),
    *mlpconv(96, 256, 256, 5),
    *mlpconv(256, 384, 384, 3),
    *mlpconv(384, 1024, 1000, 3),  # the last 1x1 conv gives the class maps
]
NIN = conv_params(NIN_CONVS)  # no fully connected layer: global average pooling
BN_NIN_CONVS = [*NIN_CONVS[:-1], (1024, 1024, 1, 1)]
# Every conv keeps its bias and gains a batch norm (2 per map); a linear layer classifies.
BN_NIN = (
    conv_params(BN_NIN_CONVS) + sum(2 * c_out for _, c_out, _, _ in BN_NIN_CONVS)
) + linear_params(1024, 1000)


def test_parameters_derived_from_the_definitions() -> None:
    assert (NIN, BN_NIN) == (7_595_176, 8_655_336)
    assert pytorch_params("nin") == NIN
    assert pytorch_params("bn_nin") == BN_NIN
    assert pytorch_params("nin", num_classes=10) == NIN - 1024 * 990 - 990


def test_bn_nin_agrees_with_canzianis_figures() -> None:
    # Canziani et al.'s accuracy per parameter: 63% top-1 at 7.2 %/M, read off the figure as
    # 8.75 M parameters; their operations, 2.5 G, are multiply-adds counted twice.
    figures = cnnarch.model_card("bn_nin").published["figures_as_read"]
    assert figures == {"M-weights": 8.75, "G-Ops": 2.5, "top-1 %": 63}
    assert pytest.approx(figures["M-weights"], rel=0.02) == BN_NIN / 1e6
    summary = cnnarch.analyze("bn_nin")
    assert 2 * summary.total_macs / 1e9 == pytest.approx(figures["G-Ops"], rel=0.02)
    assert "ninbn.lua" in cnnarch.model_card("bn_nin").published["definition"]


def grid_sizes(name: str) -> list[int]:
    with torch.device("meta"):
        model = cnnarch.create_model(name).eval()
    sides = []
    for stage in ("mlpconv1", "pool1", "pool2", "pool3", "mlpconv4"):
        model.get_submodule(stage).register_forward_hook(
            lambda _m, _i, out: sides.append(out.shape[-1])
        )
    assert model(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 1000)
    return sides


def test_grids_of_caffes_ceil_pools_and_torchs_padded_pools() -> None:
    # NIN: (224 - 11) // 4 + 1 = 54, then 3x3/2 pools rounding up: 27, 13, 6.
    assert grid_sizes("nin") == [54, 27, 13, 6, 6]
    # BN-NIN: (224 + 10 - 11) // 4 + 1 = 56, then 3x3/2 pools padded by 1: 28, 14, 7.
    assert grid_sizes("bn_nin") == [56, 28, 14, 7, 7]


def test_macs_of_an_mlpconv_layer_by_hand() -> None:
    summary = cnnarch.analyze("nin")
    # mlpconv2 at 27x27: (96*256*25 + 256*256 + 256*256) * 729.
    assert module_macs(summary, "mlpconv2") == conv_macs(NIN_CONVS[3:6], 27)
    assert module_macs(summary, "mlpconv2") == (614_400 + 2 * 65_536) * 729
    # No linear layer: the classifier is the average of the last mlpconv's class maps.
    assert not any(isinstance(m, torch.nn.Linear) for m in cnnarch.create_model("nin").modules())


def test_cards() -> None:
    nin = cnnarch.model_card("nin")
    assert nin.paper.arxiv == "1312.4400" and nin.input_size == (3, 224, 224)
    assert nin.published["test_error_percent"]["cifar10"] == 10.41
    assert cnnarch.model_card("bn_nin").paper.arxiv == "1605.07678"  # Canziani et al.
