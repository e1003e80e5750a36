"""Reading printed figures, and judging a printed figure by its own precision."""

import pytest

from cnnarch.errors import CnnarchError
from cnnarch.report.numbers import explain_gap, parse_printed, resolution


def test_printed_numbers_are_read_with_their_prefix() -> None:
    assert parse_printed("3.2M") == 3_200_000
    assert parse_printed("150K") == 150_000
    assert parse_printed("159K", k=1024) == 159 * 1024  # GoogLeNet's Table 1 uses K = 1024
    assert parse_printed(4096) == 4096
    with pytest.raises(CnnarchError, match="cannot read"):
        parse_printed("about 5M")


def test_resolution_is_one_unit_of_the_last_significant_digit() -> None:
    assert resolution("3.2M") == pytest.approx(1e5)
    assert resolution("2.7K", k=1024) == pytest.approx(102.4)
    assert resolution("380K") == 10e3  # trailing zeros of a whole number are not significant
    assert resolution("1072K", k=1024) == 1024
    assert resolution(4096) == 1


def test_gaps_are_judged_by_the_printed_precision() -> None:
    # 224 * 224 * 64 = 3,211,264 values print as 3.2M: rounding.
    assert explain_gap(224 * 224 * 64, "3.2M") == "rounded as printed"
    # ResNet-34: 3.664 GMACs printed as 3.6: the digit was cut, not rounded.
    assert explain_gap(3.664e9, "3.6G") == "cut off rather than rounded as printed"
    # GoogLeNet conv1: 7*7*3*64 = 9,408 weights, printed 2.7K.
    assert explain_gap(7 * 7 * 3 * 64, "2.7K", k=1024) == "does not follow from the architecture"
    assert explain_gap(61_100_840, 61_100_840) == "equal"
