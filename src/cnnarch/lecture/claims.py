"""How the lecture's claims are judged, and the words the report uses for it.

One vocabulary for a verdict (`HOLDS`, `DOES_NOT_HOLD`, `CANNOT_BE_COMPUTED`) and one sign for a
difference between a computed and a printed number (`difference`), used by every section of the
report and by `cnnarch summary --style cs231n`.
"""

from __future__ import annotations

from dataclasses import dataclass

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
CANNOT_BE_COMPUTED = "cannot be computed"

SIGN_CONVENTION = (
    "A difference is the computed value relative to the printed one, "
    "(computed − printed) / printed: +5% means the computed value is 5% above the printed figure."
)


def difference(computed: float, printed: float) -> float:
    """(computed - printed) / printed: the one sign convention; NaN if nothing was printed."""
    return (computed - printed) / printed if printed else float("nan")


def verdict_of(holds: bool | None) -> str:
    """The verdict's word: True holds, False does not hold, None cannot be computed."""
    return {True: HOLDS, False: DOES_NOT_HOLD, None: CANNOT_BE_COMPUTED}[holds]


@dataclass(frozen=True)
class Check:
    """A claim (from the lecture or a paper) tested against computed numbers.

    `holds` is None when the package cannot compute what the claim is about; such a claim is
    never counted as holding.
    """

    claim: str
    holds: bool | None
    evidence: str
    source: str = ""

    @property
    def verdict(self) -> str:
        return verdict_of(self.holds)


def tally(checks: list[Check]) -> dict[str, int]:
    """How many checks have each verdict, in the vocabulary's order."""
    counts = {HOLDS: 0, DOES_NOT_HOLD: 0, CANNOT_BE_COMPUTED: 0}
    for check in checks:
        counts[check.verdict] += 1
    return counts


# The lecture's ideas, in its order: the page opens with one line of evidence for each.
DEEPER_IS_BETTER = "Deeper is better"
DEEPER_IS_HARDER = "… but deeper plain nets are harder to optimize"
SMALL_FILTERS = "Small filters: a stack of 3x3 convs instead of one large filter"
BOTTLENECKS = "1x1 bottleneck layers cut the cost"
AUXILIARY = "Auxiliary classifiers: extra heads for training only"
SHORTCUTS = "Residual learning: identity shortcuts add no parameters"
RESIDUAL_TRAINS = "Residual learning: a deeper ResNet trains no worse"
WHERE_IT_SITS = "Memory sits in the early convs, parameters in the late FC layers"
TRADE_OFF = "Accuracy against cost"
IDEAS = (
    DEEPER_IS_BETTER,
    DEEPER_IS_HARDER,
    SMALL_FILTERS,
    BOTTLENECKS,
    AUXILIARY,
    SHORTCUTS,
    RESIDUAL_TRAINS,
    WHERE_IT_SITS,
    TRADE_OFF,
)
