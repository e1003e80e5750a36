"""The report as Markdown (`report.md`): the same document as the HTML page."""

from __future__ import annotations

from cnnarch.report.charts import SavedFigure
from cnnarch.report.diagrams import Diagram
from cnnarch.report.document import Block, Bullets, Checks, Document, Folded, Paragraph, Section
from cnnarch.report.explorer import Explorer
from cnnarch.report.html import FIGURES_DIR, TABLES_DIR
from cnnarch.tables import Table


def render_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, Checks):
        lines = []
        for check in block.items:
            source = f" ({check.source})" if check.source else ""
            lines.append(f"- **{check.verdict}**: “{check.claim}”{source}. {check.evidence}")
        return "\n".join(lines)
    if isinstance(block, Folded):
        return render_block(block.block)
    if isinstance(block, Table):
        links = f"[CSV]({TABLES_DIR}/{block.name}.csv), [JSON]({TABLES_DIR}/{block.name}.json)"
        note = f" {block.note}" if block.note else ""
        return f"**{block.title}**\n\n{block.to_markdown()}\n\n_{links}._{note}"
    if isinstance(block, SavedFigure):
        svg = f" ([SVG]({FIGURES_DIR}/{block.name}.svg))" if block.svg else ""
        image = f"![{block.title}]({FIGURES_DIR}/{block.name}.png)"
        return f"{image}\n\n_{block.title}._ {block.caption}{svg}"
    if isinstance(block, Diagram):
        image = f"![{block.title}]({FIGURES_DIR}/{block.name}.svg)"
        return f"{image}\n\n_{block.title}._ {block.caption}"
    if isinstance(block, Explorer):
        return (
            f"_The HTML page computes {block.model}'s totals and training peak at any batch "
            f"size, precision and optimizer._"
        )
    raise TypeError(f"cannot render {type(block).__name__}")


def render_section(section: Section, level: int = 2) -> str:
    parts = [f"{'#' * level} {section.title}"]
    parts += [render_block(b) for b in section.blocks]
    parts += [render_section(c, min(level + 1, 4)) for c in section.children]
    return "\n\n".join(parts)


def render_markdown(document: Document) -> str:
    parts = [f"# {document.title}"]
    parts += [render_block(b) for b in document.intro]
    parts += [render_section(s) for s in document.sections]
    return "\n\n".join(parts) + "\n"
