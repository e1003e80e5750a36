"""Every published number the report shows beside a computed one, in one table."""

from __future__ import annotations

from cnnarch.report.context import Context
from cnnarch.report.document import Bullets, Paragraph, Section
from cnnarch.tables import Column, Table, percent_column


def published_section(ctx: Context) -> Section:
    rows = [c.as_row() for c in ctx.comparisons]
    kinds = {kind: 0 for kind in ("agree", "bound", "differ")}
    for comparison in ctx.comparisons:
        kinds[agreement(comparison.why)] += 1
    table = Table(
        "published_vs_computed",
        "Published against computed: every comparison in this report",
        [
            Column("topic", "model / topic"),
            Column("quantity", "quantity"),
            Column("computed", "computed", digits=None),
            Column("published", "published", digits=None),
            percent_column("difference", "difference"),
            Column("source", "source"),
            Column("why", "why they differ"),
        ],
        rows,
        note="Difference: computed relative to published, (computed − published) / published. "
        "Counts are in the units of the quantity (parameters, multiply-adds, values; GMACs "
        "where the name says so).",
    )
    section = Section("published", "Published against computed")
    section.add(
        Paragraph(
            f"{len(rows)} published figures are compared here: {kinds['agree']} are the "
            f"computed value as printed (equal, or rounded or cut off to the printed digits), "
            f"{kinds['bound']} are bounds or budgets, and {kinds['differ']} differ from it (a slip "
            "in the source, or a third party's reading of another network). Each row names its "
            "source and the reason."
        ),
        table,
        Paragraph("The sources, in full:"),
        Bullets(tuple(sources(ctx))),
    )
    return section


AS_PRINTED = (
    "equal",
    "rounded as printed",
    "cut off rather than rounded as printed",
    "within one unit of the last printed digit",
)


def agreement(why: str) -> str:
    """'agree' (the computed value as printed), 'bound' (a bound or budget) or 'differ'."""
    if why.startswith(AS_PRINTED):
        return "agree"
    return "bound" if why.startswith(("a bound", "a budget")) else "differ"


def sources(ctx: Context) -> list[str]:
    """The full citation of every block of published figures the package ships."""
    found = []
    for key, block in ctx.published.items():
        if isinstance(block, dict) and "source" in block:
            found.append(f"{block['source']} (`{key}`)")
        if isinstance(block, dict):
            for inner in block.values():
                if isinstance(inner, dict) and "source" in inner:
                    found.append(inner["source"])
    return found
