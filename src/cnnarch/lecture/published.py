"""Every published figure beside the computed one, in one table, from the other topics' checks;
each that does not hold with the cause the code found and the share of the gap it explains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cnnarch.lecture.claims import DOES_NOT_HOLD, Check
from cnnarch.lecture.figures import AGREEMENTS, SIGN_CONVENTION
from cnnarch.lecture.topic import Topic
from cnnarch.report.document import Bullets, Paragraph, Section, Verdicts
from cnnarch.tables import Column, Table, percent_column
from cnnarch.zoo.registry import published


def figure_rows(checks: Sequence[Check]) -> list[dict[str, Any]]:
    """One row per check of a published figure."""
    rows = []
    for check in checks:
        figure = check.figure
        if figure is None:
            continue
        rows.append(
            {
                "claim": check.id,
                "topic": figure.topic,
                "quantity": figure.quantity,
                "computed": figure.computed,
                "published": figure.value,
                "difference": 100 * figure.difference,
                "source": figure.source,
                "agreement": figure.agreement.name,
                "verdict": check.verdict,
                "cause": check.cause.text if check.cause else None,
                "explained": None
                if check.cause is None or check.cause.share is None
                else 100 * check.cause.share,
            }
        )
    return rows


def sources() -> list[str]:
    """The full citation of every block of published figures the package ships."""
    found = []
    for key, block in published().items():
        if isinstance(block, dict) and "source" in block:
            found.append(f"{block['source']} (`{key}`)")
        if isinstance(block, dict):
            for inner in block.values():
                if isinstance(inner, dict) and "source" in inner:
                    found.append(inner["source"])
    return found


def build(checks: Sequence[Check]) -> Topic:
    """The section from every topic's checks (it judges nothing itself).

    Args:
        checks: the checks of all the other topics.
    """
    rows = figure_rows(checks)
    counts = {a.name: sum(r["agreement"] == a.name for r in rows) for a in AGREEMENTS}
    failing = [c for c in checks if c.figure is not None and c.verdict == DOES_NOT_HOLD]
    table = Table(
        "published_vs_computed",
        "Published against computed: every published figure in this report",
        [
            Column("topic", "model / topic"),
            Column("quantity", "quantity"),
            Column("computed", "computed", digits=None),
            Column("published", "published", digits=None),
            percent_column("difference", "difference"),
            Column("source", "source"),
            Column("agreement", "agreement"),
            Column("verdict", "verdict"),
            Column("cause", "cause, found by the code"),
            percent_column("explained", "share of the difference explained", digits=0),
            Column("claim", "claim id"),
        ],
        rows,
        note=f"{SIGN_CONVENTION} Counts are in the units of the quantity (parameters, "
        "multiply-adds, values; GMACs where the name says so). Third-party readings of "
        "Canziani et al.'s chart are not here: they are shown beside the comparison, not judged.",
    )
    agree = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    section = Section("published", "Published against computed")
    section.add(
        Paragraph(
            f"{len(rows)} published figures are compared with the computed values, by class of "
            f"agreement: {agree} (the classes are defined in [How the numbers are counted]"
            "(#definitions)). Each is one claim of the page's tally. Those that do not hold, "
            "with the cause the code finds (the row, term or assumption responsible, and how "
            "much of the difference it explains):"
        ),
        Verdicts(tuple(c.shown() for c in failing)),
        table,
        Paragraph("The sources, in full:"),
        Bullets(tuple(sources())),
    )
    return Topic(section)
