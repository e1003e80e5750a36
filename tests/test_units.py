"""One way to print a number: separators, decimals, decimal byte units, signs, no negative zero;
and one way to read a printed figure ("3.2M", "159K") and judge it by its printed precision."""

import pytest
from torch import nn

import cnnarch
from cnnarch import units
from cnnarch.errors import CnnarchError


def test_numbers_have_separators_and_fixed_decimals() -> None:
    assert units.number(61_100_840) == "61,100,840"
    assert units.number(2764.8, 1) == "2,764.8"
    assert units.number(2764.8) == "2,765"
    assert units.number(0.5, 2) == "0.50"


def test_free_decimals_drop_trailing_zeros() -> None:
    # The report once printed 2764.8 as "2,764.800".
    assert units.number(2764.8, None) == "2,764.8"
    assert units.number(0.72440681, None) == "0.724"
    assert units.number(1_000_000.0, None) == "1,000,000"
    assert units.number(3, None) == "3"


def test_no_negative_zero() -> None:
    assert units.number(-0.04, 1) == "0.0"
    assert units.number(-0.0) == "0"
    assert units.number(-0.0001, None) == "0"
    assert units.number(-0.05001, 1) == "-0.1"
    assert units.signed(-0.04, 1) == "0.0"
    assert units.signed_percent(-0.0004) == "0.0%"
    assert units.signed_percent(0.0004) == "0.0%"


def test_signed_differences_carry_their_sign() -> None:
    # GoogLeNet's budget: 1.58 G computed against 1.5 G printed.
    assert units.signed_percent(1.58 / 1.5 - 1) == "+5.3%"
    assert units.signed_percent(1.5 / 1.58 - 1) == "-5.1%"
    assert units.signed(1234.5, 1) == "+1,234.5"
    assert units.percent(0.1234) == "12.3%"
    assert units.percent(-0.0001) == "0.0%"


def test_counts_take_decimal_prefixes() -> None:
    assert units.prefixed(950) == "950"
    assert units.prefixed(1_814_073_344) == "1.81G"
    assert units.prefixed(11_689_512) == "11.69M"
    assert units.prefixed(12_345) == "12.35K"
    assert units.prefixed(2.5e12) == "2.50T"
    assert units.prefixed(724_406_816, 3, "G") == "0.724G"  # AlexNet's MACs
    assert units.prefixed(138_357_544, 0, "M") == "138M"  # VGG16's params, as the lecture
    with pytest.raises(ValueError, match="unknown prefix 'B'"):
        units.prefixed(1, prefix="B")


def test_tick_labels_take_a_prefix_and_only_the_decimals_they_need() -> None:
    # The ticks of a log axis of parameter counts, 0.1 to 100M.
    ticks = [0.1, 1.0, 10.0, 1e3, 1e5, 1e8]
    assert [units.prefixed(t, None) for t in ticks] == ["0.1", "1", "10", "1K", "100K", "100M"]
    assert units.prefixed(2.5e9, None) == "2.5G"
    assert units.prefixed(0.5) == "0"  # with fixed digits a count below 1K is whole


def test_shapes_are_sizes_joined_by_x() -> None:
    assert units.shape((3, 224, 224)) == "3x224x224"
    assert units.shape([56, 56, 256], "×") == "56×56×256"
    assert units.shape((1000,)) == "1000"
    assert units.shape(()) == ""


def test_bytes_are_decimal_and_labeled() -> None:
    # conv1_1 of VGG16: 224 * 224 * 64 float32 values = 12,845,056 bytes.
    assert units.byte_size(12_845_056) == "12.85 MB"
    assert units.byte_size(12_845_056, "MB", 1) == "12.8 MB"
    assert units.byte_size(512) == "512 B"
    assert units.byte_size(602_112) == "602.11 KB"  # a 3x224x224 float32 image
    assert units.byte_size(2_137_500_000) == "2.14 GB"
    assert units.byte_size(0) == "0 B"
    assert units.MB == 10**6 and units.GB == 10**9
    assert "1 MB = 10⁶ bytes" in units.BYTE_UNIT_NOTE
    with pytest.raises(ValueError, match="unknown byte unit 'MiB'"):
        units.byte_size(1, "MiB")


def test_the_summary_sizes_read_as_the_report_prints_them() -> None:
    # ResNet-18's 11,689,512 float32 parameters and its 1,814,073,344 MACs.
    assert units.byte_size(4 * 11_689_512) == "46.76 MB"
    assert units.prefixed(1_814_073_344) == "1.81G"


def test_summary_totals_print_decimal_megabytes() -> None:
    # Linear(1000, 1000): 1,000,000 weights + 1,000 biases = 1,001,000 float32 values,
    # 4,004,000 bytes = 4.00 MB (it would be 3.82 MiB in binary units).
    lines = cnnarch.analyze(nn.Linear(1000, 1000), (1000,)).totals_lines()
    assert (
        "Params: 1,001,000 (trainable 1,001,000, frozen 0) = 4.00 MB in float32; buffers 0 B"
        in lines
    )
    assert not any("iB" in line for line in lines)


def test_printed_numbers_are_read_with_their_prefix() -> None:
    assert units.parse_printed("3.2M") == 3_200_000
    assert units.parse_printed("150K") == 150_000
    assert units.parse_printed("159K", k=1024) == 159 * 1024  # GoogLeNet's Table 1 uses K = 1024
    assert units.parse_printed(4096) == 4096
    with pytest.raises(CnnarchError, match="cannot read"):
        units.parse_printed("about 5M")


def test_resolution_is_one_unit_of_the_last_significant_digit() -> None:
    assert units.resolution("3.2M") == pytest.approx(1e5)
    assert units.resolution("2.7K", k=1024) == pytest.approx(102.4)
    assert units.resolution("380K") == 10e3  # trailing zeros of a whole number are not significant
    assert units.resolution("1072K", k=1024) == 1024
    assert units.resolution(4096) == 1


def test_gaps_are_judged_by_the_printed_precision() -> None:
    # 224 * 224 * 64 = 3,211,264 values print as 3.2M: rounding.
    assert units.explain_gap(224 * 224 * 64, "3.2M") == "rounded as printed"
    # ResNet-34: 3.664 GMACs printed as 3.6: the digit was cut, not rounded.
    assert units.explain_gap(3.664e9, "3.6G") == "cut off rather than rounded as printed"
    # GoogLeNet conv1: 7*7*3*64 = 9,408 weights, printed 2.7K.
    assert (
        units.explain_gap(7 * 7 * 3 * 64, "2.7K", k=1024) == "does not follow from the architecture"
    )
    assert units.explain_gap(61_100_840, 61_100_840) == "equal"


def test_a_mean_over_seeds_carries_its_standard_deviation() -> None:
    # Training errors of three seeds, in percent: 7.5, 8.0, 8.5 -> mean 8.0, sample std 0.5.
    assert units.mean_with_std(8.0, 0.5) == "8.00 ± 0.50"
    assert units.mean_with_std(12.345, None) == "12.35"  # one seed: no spread to show
    assert units.mean_with_std(-0.001, 0.004, 1) == "0.0 ± 0.0"
