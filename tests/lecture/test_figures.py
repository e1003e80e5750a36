"""The classes of agreement of a printed figure, each at the edge of its tolerance, and the
generic causes, on numbers worked out by hand."""

import pytest

from cnnarch.lecture.claims import DOES_NOT_HOLD, HOLDS, Check, figure_check, tally_line
from cnnarch.lecture.figures import (
    CUT_OFF,
    CUT_OFF_LIMIT,
    DIFFERS,
    EQUAL,
    OVER,
    ROUNDED,
    WITHIN,
    Cause,
    Figure,
    Term,
    agreement,
    closest_factor_slip,
    cut_beyond_limit,
    excess_over_budget,
    miscounted_term,
    total_not_its_rows,
)


def test_equal() -> None:
    assert agreement(61_100_840, 61_100_840) is EQUAL
    assert agreement(4096, "4096") is EQUAL


def test_rounded_is_within_half_a_printed_unit() -> None:
    # "3.2M" is read to 0.1M: 3.15M to 3.25M round to it.
    assert agreement(224 * 224 * 64, "3.2M") is ROUNDED  # 3,211,264
    assert agreement(3_250_000, "3.2M") is ROUNDED
    assert agreement(3_250_001, "3.2M") is not ROUNDED
    # "800K" on the VGG16 slide (two digits) is read to 100K: 802,816 rounds to it.
    assert agreement(56 * 56 * 256, "800K") is ROUNDED
    # In a table that prints whole K (GoogLeNet's Table 1) "380K" is read to 1K: 388,096 =
    # 379.0K is one unit off, not rounded.
    assert agreement(388_096, "380K", k=1024) is ROUNDED
    assert agreement(388_096, "380K", k=1024, whole=True) is DIFFERS
    assert agreement(99_850_240, "100M", whole=True) is ROUNDED


def test_cut_off_is_below_one_unit_and_at_most_the_limit() -> None:
    assert CUT_OFF_LIMIT == 0.02
    # 3.66 G printed 3.6 G: cut, not rounded, and +1.8% from the printed figure.
    assert agreement(3_663_761_408, "3.6G") is CUT_OFF
    # "5 billion" for 5.71 G is a cut to one digit, but +14.3%: not as printed.
    assert agreement(5_713_216_096, "5G") is DIFFERS
    # One unit or more below: not a cut of the printed digits.
    assert agreement(3.7e9, "3.6G") is DIFFERS
    # A figure above the computed value is never a cut.
    assert agreement(3.54e9, "3.6G") is DIFFERS


def test_a_near_miss_is_never_filed_as_printed() -> None:
    # inception (4b): 448,512 weights = 438K (K = 1024), printed 437K: one unit off.
    assert agreement(448_512, "437K", k=1024) is DIFFERS
    assert not DIFFERS.holds


def test_bounds() -> None:
    assert agreement(23_834_568, "25M", bound=True) is WITHIN
    assert agreement(1_582_671_872, "1.5G", bound=True) is OVER
    assert WITHIN.holds and not OVER.holds


def test_a_check_that_does_not_hold_must_name_its_cause() -> None:
    figure = Figure("x", "weights", "2.7K", 9408, "source", k=1024)
    with pytest.raises(ValueError, match="must name its cause"):
        figure_check("x", "x", figure)
    check = figure_check("x", "x", figure, cause=Cause("why", 0.5))
    assert (
        check.verdict == DOES_NOT_HOLD and "explains 50% of the difference" in check.shown().cause
    )
    held = figure_check("y", "y", Figure("y", "params", "138M", 138_357_544, "source"))
    assert held.verdict == HOLDS and held.cause is None


def test_the_tally_line_counts_each_verdict() -> None:
    checks = [
        Check("a", "a", "holds", "e"),
        Check("b", "b", "holds", "e"),
        Check("c", "c", "within noise", "e", kind="measured"),
        Check("d", "d", "does not hold", "e", cause=Cause("c", None)),
    ]
    assert tally_line(checks) == "4 claims checked: 2 hold, 1 within noise, 1 do not hold"


def test_a_total_that_is_not_the_sum_of_its_rows() -> None:
    # Rows printed as 10 + 20 + 30 = 60, the total printed as 90, the computed value 61.
    cause = total_not_its_rows("90", [10, 20, 30], 61)
    assert cause.share == pytest.approx((90 - 60) / (90 - 61))
    assert "sum to" in cause.text


def test_a_term_counted_twice() -> None:
    terms = [Term("a", 10e6), Term("b", 86.7e6), Term("c", 174.7e6)]  # 271.4M
    cause = miscounted_term(terms, "358M")
    assert cause is not None and "b (86,700,000) counted twice" in cause.text
    assert cause.share == pytest.approx((358.1e6 - 271.4e6) / (358e6 - 271.4e6))
    assert miscounted_term(terms, "500M") is None  # no single term explains it


def test_a_factor_left_out() -> None:
    # 7 x 7 x 3 x 64 = 9,408; printed 2.7K (K = 1024): leaving out the 3 gives 3,136,
    # which closes 94% of the gap.
    factors = [Term("the patch", 49), Term("the input depth", 3), Term("the filters", 64)]
    cause = closest_factor_slip(factors, "2.7K", 1024)
    assert "the input depth left out (3,136)" in cause.text
    assert cause.share == pytest.approx((3136 - 9408) / (2.7 * 1024 - 9408))


def test_the_rows_that_exceed_a_budget() -> None:
    rows = [("a", 34e6, 118e6), ("b", 100e6, 99.9e6), ("c", 54e6, 51e6)]
    cause = excess_over_budget(rows, 1.5e9, 1.5827e9)
    assert "a (+84.0M)" in cause.text and "b (" not in cause.text
    assert cause.share == pytest.approx(84e6 / 82.7e6)


def test_a_cut_beyond_the_limit() -> None:
    figure = Figure("inception_v3", "multiply-adds", "5G", 5_713_216_096, "source")
    cause = cut_beyond_limit(figure)
    assert cause is not None and cause.share == 1.0
    assert "rounded it would be 6" in cause.text and "+14.3%" in cause.text
    assert cut_beyond_limit(Figure("x", "y", "6G", 5.71e9, "s")) is None
