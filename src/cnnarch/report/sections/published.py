"""Every published number the report shows beside a computed one, in one table."""

from __future__ import annotations

from cnnarch.report.context import Context
from cnnarch.report.document import Bullets, Paragraph, Section
from cnnarch.report.tables import Column, Table


def published_section(ctx: Context) -> Section:
    rows = [c.as_row() for c in ctx.comparisons]
    off = [c for c in ctx.comparisons if abs(c.difference) > 0.02]
    table = Table(
        "published_vs_computed",
        "Published against computed: every comparison in this report",
        [
            Column("topic", "model / topic"),
            Column("quantity", "quantity"),
            Column("computed", "computed", digits=None),
            Column("published", "published", digits=None),
            Column("difference", "difference", unit="%", digits=1),
            Column("source", "source"),
            Column("why", "why they differ"),
        ],
        rows,
        note="Difference = (published − computed) / computed. Counts are in the units of the "
        "quantity (parameters, multiply-adds, values, bytes; GMACs where the name says so).",
    )
    section = Section("published", "Published against computed")
    section.add(
        Paragraph(
            f"{len(rows)} published figures are compared above; {len(off)} of them differ from "
            "the computed value by more than 2%. Each row names its source and the reason."
        ),
        table,
        Paragraph("The sources, in full:"),
        Bullets(tuple(sources(ctx))),
    )
    return section


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
