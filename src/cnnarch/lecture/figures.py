"""Published figures beside computed ones: when a printed figure agrees, and, where it does not,
what causes the difference.

The classes of agreement are defined here once, each with its tolerance (`AGREEMENTS`):

- equal: the printed figure is the computed value;
- rounded: within half a unit of the last printed digit ("3.2M" for 3,211,264);
- cut off: below the computed value by less than one unit of the last printed digit, with a
  difference of at most `CUT_OFF_LIMIT` ("3.6G" for 3.66 G, +1.8%; not "5 billion" for
  5.71 G, +14.3%);
- within the bound / over the bound: a printed bound or budget ("less than 25 million");
- differs: anything else. A figure that differs does not hold, and its check names a `Cause`:
  the row, term or assumption the code finds responsible and the share of the gap it explains.

Digits: trailing zeros of a whole printed number are not significant ("800K" on the VGG16
slide, which prints two digits, is read to 100K: `cnnarch.units.resolution`), except in a table
that prints whole units in every row (GoogLeNet's Table 1: "380K" is read to 1K, "100M" to
1M; `whole=True`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnarch.units import number, parse_printed, prefixed, resolution, signed_percent

CUT_OFF_LIMIT = 0.02  # a figure cut off (not rounded) agrees if the difference is at most 2%


@dataclass(frozen=True)
class Agreement:
    """A class of agreement between a printed figure and the computed value."""

    name: str
    meaning: str  # with its tolerance, as the page's definitions say it
    holds: bool


EQUAL = Agreement("equal", "the printed figure is the computed value", True)
ROUNDED = Agreement(
    "rounded", "within half a unit of the last printed digit of the computed value", True
)
CUT_OFF = Agreement(
    "cut off",
    f"below the computed value by less than one unit of the last printed digit, a difference "
    f"of at most +{CUT_OFF_LIMIT:.0%}",
    True,
)
WITHIN = Agreement(
    "within the bound", "a printed bound or budget that the computed value meets", True
)
OVER = Agreement(
    "over the bound", "a printed bound or budget that the computed value exceeds", False
)
DIFFERS = Agreement("differs", "any other difference: the check names its cause", False)
AGREEMENTS = (EQUAL, ROUNDED, CUT_OFF, WITHIN, OVER, DIFFERS)


def printed_unit(printed: str | float, k: float = 1e3, whole: bool = False) -> float:
    """The value of one unit of the last printed digit: '3.2M' 0.1M, '800K' 100K; with
    `whole`, trailing zeros count ('380K' 1K, '100M' 1M).

    Args:
        printed: the figure as printed.
        k: what the source's "K" means.
        whole: the source prints whole units in every row, trailing zeros included.
    """
    unit = resolution(printed, k)
    if whole and isinstance(printed, str) and "." not in printed:
        return min(unit, parse_printed("1" + printed.strip()[-1], k))
    return unit


def agreement(
    computed: float,
    printed: str | float,
    *,
    k: float = 1e3,
    bound: bool = False,
    whole: bool = False,
) -> Agreement:
    """How `printed` agrees with `computed` (`AGREEMENTS`, tolerances in the module's text).

    Args:
        computed: the value derived from the architecture.
        printed: the figure as its source prints it ("3.2M", "159K", 4096).
        k: what the source's "K" means (1024 in GoogLeNet's Table 1).
        bound: the figure is an upper bound or a budget, not a value.
        whole: trailing zeros are significant (`printed_unit`).
    """
    value = parse_printed(printed, k)
    if bound:
        return WITHIN if computed <= value else OVER
    gap = value - computed
    unit = printed_unit(printed, k, whole)
    if gap == 0:
        return EQUAL
    if abs(gap) <= 0.5 * unit * (1 + 1e-9):
        return ROUNDED
    if -unit < gap < 0 and -gap <= CUT_OFF_LIMIT * value:
        return CUT_OFF
    return DIFFERS


def difference(computed: float, printed: float) -> float:
    """(computed - printed) / printed: the one sign convention; NaN if nothing was printed."""
    return (computed - printed) / printed if printed else float("nan")


SIGN_CONVENTION = (
    "A difference is the computed value relative to the printed one, "
    "(computed − printed) / printed: +5% means the computed value is 5% above the printed figure."
)


@dataclass(frozen=True)
class Figure:
    """A printed figure beside the value computed for the same quantity."""

    topic: str  # the model or topic it belongs to
    quantity: str
    printed: str | float  # as printed: "138M", "2.7K", 4096
    computed: float
    source: str
    k: float = 1e3  # what the source's "K" means
    bound: bool = False  # an upper bound or budget
    whole: bool = False  # trailing zeros are significant (`printed_unit`)

    @property
    def value(self) -> float:
        return parse_printed(self.printed, self.k)

    @property
    def unit(self) -> float:
        return printed_unit(self.printed, self.k, self.whole)

    @property
    def difference(self) -> float:
        return difference(self.computed, self.value)

    @property
    def agreement(self) -> Agreement:
        return agreement(self.computed, self.printed, k=self.k, bound=self.bound, whole=self.whole)

    def summary(self) -> str:
        """'computed 9,408 against the printed 2.7K (+240.3%): differs'."""
        return (
            f"computed {number(self.computed, None)} against the printed {self.printed} "
            f"({signed_percent(self.difference)}): {self.agreement.name}"
        )


@dataclass(frozen=True)
class Cause:
    """Why a printed figure (or a claim) does not hold, as the code finds it: `text` names the
    row, term or assumption responsible; `share` is the part of the gap it accounts for (1.0:
    all of it), None where no single cause is found (the text then says what was tried)."""

    text: str
    share: float | None

    def shown(self) -> str:
        if self.share is None:
            return self.text
        return f"{self.text} (explains {self.share:.0%} of the difference)"


def share_of_gap(hypothesis: float, computed: float, printed: float) -> float:
    """How much of the gap from `computed` to `printed` a hypothesis that gives `hypothesis`
    closes: 1.0 when it lands on the printed figure."""
    return (hypothesis - computed) / (printed - computed)


def total_not_its_rows(
    printed_total: str | float, printed_rows: Sequence[float], computed: float, k: float = 1e3
) -> Cause:
    """A printed total against the sum of the rows printed with it: if the rows sum to the
    computed value (as printed), the slip is in the total line.

    Args:
        printed_total: the total as printed.
        printed_rows: each row's printed value, read.
        computed: the computed total.
        k: what the source's "K" means.
    """
    rows_sum = sum(printed_rows)
    total = parse_printed(printed_total, k)
    share = (total - rows_sum) / (total - computed)  # the part of the gap in the total line
    return Cause(
        f"the printed rows themselves sum to {number(rows_sum / 1e6, 1)}M, not "
        f"{printed_total}: the total line is an arithmetic slip of the source, not a "
        "difference in the architecture",
        share,
    )


@dataclass(frozen=True)
class Term:
    """One product of a printed total: its label and its value."""

    label: str
    value: float


def miscounted_term(
    terms: Sequence[Term],
    printed: str | float,
    k: float = 1e3,
    what: str = "total",
    whole: bool = False,
) -> Cause | None:
    """The one term that, counted twice or left out, turns the sum of `terms` into the printed
    figure (as printed: equal, rounded or cut off); None if no such term exists.

    Args:
        terms: the products the total is made of.
        printed: the printed total.
        k: what the source's "K" means.
        what: how the text names the total.
        whole: trailing zeros are significant (`printed_unit`).
    """
    computed = sum(t.value for t in terms)
    found = []
    for term in terms:
        slips = (("counted twice", computed + term.value), ("left out", computed - term.value))
        for slip, total in slips:
            if agreement(total, printed, k=k, whole=whole).holds:
                found.append((term, slip, total))
    if len(found) != 1:
        return None  # none, or several that fit equally: not one cause
    term, slip, total = found[0]
    return Cause(
        f"the {what} is the sum of its own products with {term.label} "
        f"({number(term.value)}) {slip}: {number(total)}, which is {printed} as printed",
        share_of_gap(total, computed, parse_printed(printed, k)),
    )


def excess_over_budget(
    rows: Sequence[tuple[str, float, float]], budget: float, computed: float, unit: str = "M"
) -> Cause:
    """Which rows' printed figures fall short of their computed values, and how much of the
    excess over a budget they account for.

    Args:
        rows: (label, printed value, computed value) of each row of the source's table.
        budget: the printed budget.
        computed: the computed total.
        unit: the prefix the text shows values in ("M": millions).
    """
    scale = {"M": 1e6, "G": 1e9}[unit]
    excess = computed - budget
    short = [(label, c - p) for label, p, c in rows if c - p > 0.01 * excess]
    gap = sum(d for _, d in short)
    printed_sum = sum(p for _, p, _ in rows)
    named = ", ".join(f"{label} (+{number(d / scale, 1)}{unit})" for label, d in short)
    return Cause(
        f"the source's own table sums to {number(printed_sum / scale, 0)}{unit} against the "
        f"budget of {number(budget / scale, 0)}{unit}; the rows it prints below their computed "
        f"values by more than 1% of the excess, {named}, add {number(gap / scale, 1)}{unit} "
        f"against an excess of {number(excess / scale, 1)}{unit}",
        gap / excess,
    )


def closest_factor_slip(
    factors: Sequence[Term], printed: str | float, k: float = 1e3, whole: bool = False
) -> Cause:
    """For a printed figure that should be the product of `factors`: the one factor whose
    omission comes closest to the printed figure, and the share of the gap that omission
    explains (all of it only if it lands on the printed figure).

    Args:
        factors: the product's factors (label, value).
        printed: the printed figure.
        k: what the source's "K" means.
        whole: trailing zeros are significant (`printed_unit`).
    """
    product = 1.0
    for factor in factors:
        product *= factor.value
    value = parse_printed(printed, k)
    shares = {f.label: share_of_gap(product / f.value, product, value) for f in factors}
    label = min(shares, key=lambda name: abs(shares[name] - 1))
    left = product / next(f.value for f in factors if f.label == label)
    lands = agreement(left, printed, k=k, whole=whole).holds
    return Cause(
        f"{' × '.join(number(f.value) for f in factors)} = {number(product)}; the closest single "
        f"slip, {label} left out ({number(left)}), "
        + ("gives the printed figure" if lands else f"does not give {printed} either"),
        shares[label],
    )


def cut_beyond_limit(figure: Figure) -> Cause | None:
    """A figure that is the computed value cut off to its printed digits, where the cut costs
    more than `CUT_OFF_LIMIT` (too much to count as printed); None if it is not a cut.

    Args:
        figure: the printed and computed figure.
    """
    unit = figure.unit
    cut = figure.computed // unit * unit
    if cut != figure.value:
        return None
    rounded = round(figure.computed / unit) * unit
    prefix = str(figure.printed)[-1] if str(figure.printed)[-1] in "KMG" else ""
    return Cause(
        f"{figure.printed} is the computed {prefixed(figure.computed, 2, prefix)} cut off to its "
        f"printed digits (rounded it would be {prefixed(rounded, None, prefix)}): a difference "
        f"of {signed_percent(figure.difference)}, beyond the +{CUT_OFF_LIMIT:.0%} a cut may "
        "differ and still count as printed",
        share_of_gap(cut, figure.computed, figure.value),
    )
