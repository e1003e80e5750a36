"""ENet for ImageNet: parameters derived from its definition, a bottleneck's MACs by hand, one
residual addition per bottleneck, and Canziani et al.'s figures."""

import pytest
import torch

import cnnarch
from cnnarch.zoo.enet import Bottleneck
from zoo.arithmetic import conv_macs, linear_params, module_macs, pytorch_params

# (input maps, output maps, main-branch width, downsamples) of the twelve bottlenecks.
BOTTLENECKS = [
    *[(16, 64, 64, True), (64, 128, 32, False), (128, 128, 32, False)],
    *[(128, 256, 64, True), (256, 256, 64, False), (256, 256, 64, False)],
    *[(256, 512, 128, True), (512, 512, 128, False), (512, 512, 128, False)],
    *[(512, 1024, 256, True), (1024, 1024, 256, False), (1024, 1024, 256, False)],
]


def bottleneck_params(c_in: int, c_out: int, width: int, downsample: bool) -> int:
    k = 2 if downsample else 1
    convs = c_in * width * k * k + (width * width * 9 + width) + width * c_out  # 3x3 has a bias
    batch_norms = 2 * width + 2 * width + 2 * c_out
    prelus = width + width + c_out  # one slope per map
    return convs + batch_norms + prelus


# The initial block: a 3x3/2 conv to 13 maps (with bias) beside the pooled 3, BN and PReLU on 16.
INITIAL = 13 * 3 * 9 + 13 + 2 * 16 + 16
ENET = INITIAL + sum(bottleneck_params(*b) for b in BOTTLENECKS) + linear_params(1024, 1000)


def test_parameters_derived_from_the_definition() -> None:
    assert ENET == 5_861_508
    assert pytorch_params("enet") == ENET


def test_canzianis_figures() -> None:
    # Accuracy per parameter: 68% top-1 at 11.6 %/M, read off the figure as 5.9 M.
    figures = cnnarch.model_card("enet").published["figures_as_read"]
    assert (figures["M-weights"], figures["top-1 %"]) == (5.9, 68)
    assert pytest.approx(68 / 11.6, rel=0.005) == ENET / 1e6


def test_a_bottlenecks_macs_by_hand_and_one_residual_addition_each() -> None:
    summary = cnnarch.analyze("enet")
    # stage2.1 at 28x28: 1x1 256 -> 64, 3x3 64 -> 64, 1x1 64 -> 256; the shortcut costs none.
    convs = [(256, 64, 1, 1), (64, 64, 3, 3), (64, 256, 1, 1)]
    assert module_macs(summary, "stage2.1") == conv_macs(convs, 28) == 69_632 * 784
    assert len(summary.residuals) == len(BOTTLENECKS) == 12


def test_downsampling_pools_the_shortcut_and_pads_it_with_zero_maps() -> None:
    torch.manual_seed(0)
    block = Bottleneck(16, 64, 64, downsample=True, dropout=0.01).eval()
    for module in (block.reduce, block.conv, block.expand):
        torch.nn.init.zeros_(module.weight)
    torch.nn.init.ones_(block.prelu.weight)  # a PReLU of slope 1 is the identity
    x = torch.randn(1, 16, 8, 8)
    out = block(x)  # the main branch gives zeros: only the shortcut is left
    torch.testing.assert_close(out[:, :16], torch.nn.functional.max_pool2d(x, 2))
    assert out[:, 16:].abs().sum() == 0


def test_input_channels_keep_the_initial_block_at_16_maps() -> None:
    with torch.device("meta"):
        gray = cnnarch.create_model("enet", in_channels=1)
    assert gray.initial.conv.out_channels == 15
    assert gray(torch.empty(2, 1, 224, 224, device="meta")).shape == (2, 1000)
    with pytest.raises(cnnarch.CnnarchError, match="enet takes 1 to 15 input channels"):
        cnnarch.create_model("enet", in_channels=16)
