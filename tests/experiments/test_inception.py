"""`inception_cost` against the lecture's Inception module, derived by hand."""

import pytest

import cnnarch
from cnnarch.errors import CnnarchError
from cnnarch.experiments.inception import inception_cost, lecture_example

SIDE = 28
IN = 256
PIXELS = SIDE * SIDE


def conv_macs(kernel: int, c_in: int, c_out: int) -> int:
    """Multiply-adds of a stride-1 'same' conv on the 28x28 map: one per weight per pixel."""
    return PIXELS * kernel * kernel * c_in * c_out


def test_naive_module_matches_the_slide() -> None:
    naive = inception_cost()  # defaults: the lecture's 28x28x256 naive module
    by_branch = [b.macs for b in naive.branches]
    assert by_branch == [
        conv_macs(1, IN, 128),  # 25,690,112
        conv_macs(3, IN, 192),  # 346,816,512
        conv_macs(5, IN, 96),  # 481,689,600
        0,  # max pooling: no multiply-adds
    ]
    assert naive.total_macs == 854_196_224  # the slide prints "854M"
    assert naive.output_depth == 128 + 192 + 96 + IN == 672
    assert naive.output_shape == (672, SIDE, SIDE)


def test_bottleneck_module_by_hand_and_the_slides_total() -> None:
    _, bottleneck = lecture_example()
    hand = (
        conv_macs(1, IN, 128)
        + conv_macs(1, IN, 64)
        + conv_macs(3, 64, 192)
        + conv_macs(1, IN, 64)
        + conv_macs(5, 64, 96)
        + conv_macs(1, IN, 64)
    )
    assert bottleneck.total_macs == hand == 271_351_808
    assert bottleneck.output_depth == 128 + 192 + 96 + 64 == 480
    # The slide prints "358M" for this module; the sum of its own per-layer products is 271M.
    assert abs(hand - 358e6) / hand > 0.3


def test_weights_only_and_with_biases() -> None:
    weights = inception_cost(bias=False).total_params
    assert weights == IN * 128 + 9 * IN * 192 + 25 * IN * 96
    assert inception_cost(bias=True).total_params == weights + 128 + 192 + 96


def test_googlenet_table1_inception_3a() -> None:
    # Table 1, (3a): 28x28 input of depth 192; #1x1 64, #3x3 reduce 96, #3x3 128,
    # #5x5 reduce 16, #5x5 32, pool proj 32. Printed: 159K params (K = 1024), 128M ops.
    cost = cnnarch.inception_cost(
        192, 28, 64, 128, 32, n3x3_reduce=96, n5x5_reduce=16, pool_proj=32, bias=False
    )
    weights = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    assert cost.total_params == weights == 163_328
    assert weights / 1024 == 159.5  # printed as 159K
    assert cost.total_macs == weights * 28 * 28 == 128_049_152
    assert cost.output_depth == 256


@pytest.mark.parametrize(
    "kwargs", [{"in_channels": 0}, {"n3x3": -1}, {"pool_proj": 0}, {"size": 0}]
)
def test_bad_sizes_are_clear_errors(kwargs) -> None:
    with pytest.raises(CnnarchError, match="positive"):
        inception_cost(**kwargs)
