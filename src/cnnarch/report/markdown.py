"""A document as Markdown (`report.md`): the same blocks as the page, charts as their PNG,
pictures as their SVG file. What a Markdown reader would take for HTML is escaped
(`markup.inline_markdown`)."""

from __future__ import annotations

from cnnarch.report.document import (
    Block,
    Bullets,
    Chart,
    Columns,
    Contents,
    Document,
    Folded,
    Paragraph,
    Picture,
    Section,
    Verdicts,
    Widget,
)
from cnnarch.report.html import FIGURES_DIR, TABLES_DIR
from cnnarch.report.markup import inline_markdown as md
from cnnarch.tables import Table


def render_block(block: Block) -> str:
    """One block as Markdown.

    Args:
        block: any block of `cnnarch.report.document`.
    """
    if isinstance(block, Paragraph):
        return md(block.text)
    if isinstance(block, Bullets):
        return "\n".join(f"- {md(item)}" for item in block.items)
    if isinstance(block, Verdicts):
        lines = []
        for v in block.items:
            source = f" ({md(v.source)})" if v.source else ""
            cause = f" Why: {md(v.cause)}" if v.cause else ""
            lines.append(f"- **{v.verdict}**: “{md(v.statement)}”{source}. {md(v.evidence)}{cause}")
        return "\n".join(lines)
    if isinstance(block, Folded):
        return render_block(block.block)
    if isinstance(block, Table):
        links = f"[CSV]({TABLES_DIR}/{block.name}.csv), [JSON]({TABLES_DIR}/{block.name}.json)"
        note = f" {md(block.note)}" if block.note else ""
        return f"**{md(block.title)}**\n\n{md(block.to_markdown())}\n\n_{links}._{note}"
    if isinstance(block, Chart):
        image = f"![{md(block.title)}]({FIGURES_DIR}/{block.name}.png)"
        svg = f"([SVG]({FIGURES_DIR}/{block.name}.svg))"
        return f"{image}\n\n_{md(block.title)}._ {md(block.caption)} {svg}"
    if isinstance(block, Picture):
        image = f"![{md(block.title)}]({FIGURES_DIR}/{block.name}.svg)"
        return f"{image}\n\n_{md(block.title)}._ {md(block.caption)}"
    if isinstance(block, Widget):
        return md(block.markdown)
    if isinstance(block, Columns):
        return "\n\n".join(render_block(b) for column in block.columns for b in column)
    if isinstance(block, Contents):
        return "\n".join(_contents(block.sections, block.depth))
    raise TypeError(f"cannot render {type(block).__name__}")


def _contents(sections: tuple[Section, ...], left: int, indent: int = 0) -> list[str]:
    lines = []
    for section in sections:
        lines.append(f"{'  ' * indent}- [{md(section.title)}](#{section.id})")
        if left > 1:
            lines += _contents(tuple(section.children), left - 1, indent + 1)
    return lines


def render_section(section: Section, level: int = 2) -> str:
    """A section and its children, headings from `level` down to 4.

    Args:
        section: the section.
        level: its heading's level.
    """
    parts = [f"{'#' * level} {md(section.title)}"]
    parts += [render_block(b) for b in section.blocks]
    parts += [render_section(c, min(level + 1, 4)) for c in section.children]
    return "\n\n".join(parts)


def render_markdown(document: Document) -> str:
    """The whole document as Markdown.

    Args:
        document: the document to render.
    """
    parts = [f"# {md(document.title)}", md(document.lead)]
    parts += [render_block(b) for b in document.intro]
    parts += [render_section(s) for s in document.sections]
    return "\n\n".join(parts) + "\n"
