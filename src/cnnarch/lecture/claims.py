"""How the lecture's claims are judged, in one vocabulary.

A `Check` is one claim (from the lecture, a paper, or a published figure) with one verdict:

- holds: the numbers say so, by more than their noise where they are measured;
- within noise: a measured difference smaller than its uncertainty (seed spread and sampling
  error, `cnnarch.experiments.degradation.GapEstimate`);
- depends on the measure: a comparative claim ("the most memory") that holds on some of the
  measures the page shows and not on others;
- does not hold: the numbers say otherwise; the check names its `Cause`;
- cannot be computed: the package cannot compute what the claim is about (never counted as
  holding).

Each check also says what kind of evidence decides it: computed from the architecture,
measured by training runs, or published by someone else (accuracy).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cnnarch.lecture.figures import Cause, Figure
from cnnarch.report.document import Tone, Verdict

HOLDS = "holds"
WITHIN_NOISE = "within noise"
DEPENDS = "depends on the measure"
DOES_NOT_HOLD = "does not hold"
CANNOT_BE_COMPUTED = "cannot be computed"
VERDICTS = (HOLDS, WITHIN_NOISE, DEPENDS, DOES_NOT_HOLD, CANNOT_BE_COMPUTED)
TONES: dict[str, Tone] = {
    HOLDS: "good",
    WITHIN_NOISE: "mixed",
    DEPENDS: "mixed",
    DOES_NOT_HOLD: "bad",
    CANNOT_BE_COMPUTED: "open",
}

COMPUTED = "computed"  # from the architecture, by the analyzer
MEASURED = "measured"  # by training runs of this package
PUBLISHED = "published"  # a figure someone else published (accuracy of trained weights)
EVIDENCE_KINDS = (COMPUTED, MEASURED, PUBLISHED)


def verdict_of(holds: bool | None) -> str:
    """True holds, False does not hold, None cannot be computed."""
    return {True: HOLDS, False: DOES_NOT_HOLD, None: CANNOT_BE_COMPUTED}[holds]


@dataclass(frozen=True)
class Check:
    """A claim and its one verdict. A check that does not hold must carry its `cause`; one
    about a printed number carries the `figure` it judges."""

    id: str  # unique in the report
    claim: str
    verdict: str
    evidence: str
    source: str = ""
    kind: str = COMPUTED
    figure: Figure | None = None
    cause: Cause | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"{self.id}: unknown verdict {self.verdict!r}")
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"{self.id}: unknown kind of evidence {self.kind!r}")
        if self.verdict == DOES_NOT_HOLD and self.cause is None:
            raise ValueError(f"{self.id}: a claim that does not hold must name its cause")

    def shown(self) -> Verdict:
        """The check as the page shows it."""
        return Verdict(
            self.id,
            self.claim,
            self.verdict,
            TONES[self.verdict],
            self.evidence,
            self.source,
            self.cause.shown() if self.cause else "",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "claim": self.claim,
            "verdict": self.verdict,
            "evidence": self.evidence,
            "source": self.source,
            "kind": self.kind,
            "cause": self.cause.text if self.cause else None,
            "share_explained": self.cause.share if self.cause else None,
        }


def claim_check(
    id: str,
    claim: str,
    holds: bool | None,
    evidence: str,
    source: str = "",
    *,
    kind: str = COMPUTED,
    cause: Cause | None = None,
) -> Check:
    """A claim that the numbers in `evidence` decide outright (no noise, one measure).

    Args:
        id: the check's id.
        claim: what the source says.
        holds: True, False, or None where it cannot be computed.
        evidence: the numbers, as the page shows them.
        source: where the claim is made.
        kind: what kind of evidence decides it.
        cause: why it does not hold; by default the evidence itself is named as the cause.
    """
    if holds is False and cause is None:
        cause = Cause(f"the computed numbers contradict it: {evidence}", None)
    return Check(id, claim, verdict_of(holds), evidence, source, kind, cause=cause)


def figure_check(
    id: str,
    claim: str,
    figure: Figure,
    *,
    evidence: str | None = None,
    cause: Cause | None = None,
) -> Check:
    """The check of a published figure: it holds when the figure agrees (`figures.AGREEMENTS`).

    Args:
        id: the check's id.
        claim: what the source says.
        figure: the printed figure beside the computed one.
        evidence: the text shown (default: the figure's summary).
        cause: why it does not hold (required when it does not).
    """
    holds = figure.agreement.holds
    return Check(
        id,
        claim,
        HOLDS if holds else DOES_NOT_HOLD,
        evidence or figure.summary() + ".",
        figure.source,
        COMPUTED,
        figure,
        None if holds else cause,
    )


def tally(checks: Iterable[Check]) -> dict[str, int]:
    """How many checks have each verdict, in the vocabulary's order."""
    counts = dict.fromkeys(VERDICTS, 0)
    for check in checks:
        counts[check.verdict] += 1
    return counts


def tally_line(checks: Sequence[Check]) -> str:
    """'42 claims checked: 30 hold, 1 within noise, ...' (verdicts with no claim left out)."""
    counts = tally(checks)
    words = {HOLDS: "hold", DOES_NOT_HOLD: "do not hold", DEPENDS: "depend on the measure"}
    parts = [f"{n} {words.get(v, v)}" for v, n in counts.items() if n]
    return f"{len(checks)} claims checked: {', '.join(parts)}"


def combined(verdicts: Sequence[str]) -> str:
    """One verdict for several checks: holds if all hold; does not hold if one does not; else
    the first of within noise, depends on the measure, cannot be computed that occurs."""
    if not verdicts:
        return CANNOT_BE_COMPUTED
    for verdict in (DOES_NOT_HOLD, WITHIN_NOISE, DEPENDS, CANNOT_BE_COMPUTED):
        if verdict in verdicts:
            return verdict
    return HOLDS


# The lecture's ideas, in its order: the page opens with one line of evidence for each.
DEEPER_IS_BETTER = "Deeper is better"
DEEPER_IS_HARDER = "… but deeper plain nets are harder to optimize"
SMALL_FILTERS = "Small filters: a stack of 3x3 convs instead of one large filter"
BOTTLENECKS = "1x1 bottleneck layers cut the cost"
AUXILIARY = "Auxiliary classifiers: extra heads for training only"
SHORTCUTS = "Residual learning: identity shortcuts add no parameters"
RESIDUAL_TRAINS = "Residual learning: a deeper ResNet trains no worse"
MEMORY_AND_PARAMS = "Memory sits in the early convs, parameters in the late FC layers"
TRADE_OFF = "Accuracy against cost"
IDEAS = (
    DEEPER_IS_BETTER,
    DEEPER_IS_HARDER,
    SMALL_FILTERS,
    BOTTLENECKS,
    AUXILIARY,
    SHORTCUTS,
    RESIDUAL_TRAINS,
    MEMORY_AND_PARAMS,
    TRADE_OFF,
)


@dataclass(frozen=True)
class Idea:
    """One line of the key ideas: the idea, a short piece of evidence, the checks that decide
    it (their verdicts make its verdict) and the section that shows them."""

    idea: str  # one of IDEAS
    evidence: str
    checks: tuple[str, ...]  # ids of checks
    section: str

    def __post_init__(self) -> None:
        if self.idea not in IDEAS:
            raise ValueError(f"not one of the lecture's ideas: {self.idea!r}")
        if not self.checks:
            raise ValueError(f"{self.idea!r}: an idea needs the checks that decide it")
