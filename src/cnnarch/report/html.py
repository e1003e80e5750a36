"""A document as one self-contained HTML page: Jinja templates with autoescape, the package's
CSS and JavaScript (`assets/`) inlined, every chart and picture as inline SVG (its text stays
text: sharp, searchable, and measured to keep it legible on a phone).

Nothing is fetched from the network; the page opens from disk offline. The figures and tables
sit beside it as files (`FIGURES_DIR`, `TABLES_DIR`) and are linked.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

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
from cnnarch.report.markup import element, inline_html, join
from cnnarch.tables import Table

FIGURES_DIR = "figures"
TABLES_DIR = "tables"
STYLESHEETS = ("report.css", "explorer.css")
# In this order: sorting, the hover box, then the widgets' scripts (which read the hover box's
# targets).
SCRIPTS = ("sort.js", "tip.js", "allocator.js", "explorer.js")


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("cnnarch.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )
    env.filters["inline"] = inline_html
    env.globals["block"] = render_block
    env.globals["render_section"] = render_section
    return env


def asset(name: str) -> str:
    """The text of a file in `cnnarch/report/assets/`.

    Args:
        name: the file's name, e.g. `report.css`.
    """
    return (files("cnnarch.report") / "assets" / name).read_text(encoding="utf-8")


def _inlined(names: tuple[str, ...], closing: str) -> Markup:
    """Asset files joined for a <style> or <script> element; none may close it early."""
    text = "\n".join(asset(name) for name in names)
    if closing in text.lower():
        raise ValueError(f"an asset contains {closing!r}, which would end its element")
    return Markup(text)


# The smallest text a figure may show, in CSS px: a figure shrinks to the page's width only as
# far as its smallest text stays this large; narrower than that (a phone), it scrolls sideways
# in its box, with a cue that says so.
LEGIBLE_PX = 10.0
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_VIEW_WIDTH = re.compile(r'viewBox="\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)')
_WIDTH = re.compile(r'\swidth="([\d.]+)(px|pt)?"')
# A font size as an attribute (font-size="11") or in a style (font-size: 8.5px), in the SVG's
# own units.
_FONT_SIZE = re.compile(r'font-size(?:="|:\s*)([\d.]+)')
_CSS_PX = {"px": 1.0, "pt": 4 / 3, None: 1.0}
_NEGATIVE_ZERO = re.compile(r"(?<![\w.-])-0(?![\d.])")


@dataclass(frozen=True)
class FigureFit:
    """How wide an inline SVG may be shown: at most as drawn (`natural`, CSS px), at least as
    wide as keeps its smallest text `LEGIBLE_PX` (`legible`; where that is wider than drawn, it
    is shown at `legible`)."""

    natural: float
    legible: float

    def style(self) -> str:
        """The widths as the CSS variables the page's style sheet reads."""
        return f"--natural: {self.natural:.0f}px; --legible: {self.legible:.0f}px"


def figure_fit(svg: str) -> FigureFit:
    """The widths `svg` may be shown at, read from its root's size and its font sizes.

    Args:
        svg: the SVG markup (its root element first, or after an XML prologue).
    """
    root = _SVG_OPEN.search(svg)
    if root is None:
        raise ValueError("not an SVG: no <svg> element")
    width = _WIDTH.search(root.group(0))
    view = _VIEW_WIDTH.search(root.group(0))
    if width is None:
        raise ValueError("an inline SVG needs a width on its root element")
    natural = float(width.group(1)) * _CSS_PX[width.group(2)]
    units = float(view.group(1)) if view else natural  # the SVG's units across its width
    sizes = [float(size) for size in _FONT_SIZE.findall(svg)]
    return FigureFit(natural, math.ceil(units * LEGIBLE_PX / min(sizes)) if sizes else 0.0)


def inline_svg(svg: bytes | str) -> Markup:
    """An SVG file's text as markup to place in the page: from its root element on (no XML
    prologue, doctype or metadata)."""
    text = svg.decode("utf-8") if isinstance(svg, bytes) else str(svg)
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    # matplotlib writes negative zeros (rotate(-0 ...), path points): the page has none.
    return Markup(_NEGATIVE_ZERO.sub("0", text))


def _table_view(table: Table) -> dict[str, object]:
    numeric = table.numeric_columns()
    head = [(column.heading(), num) for column, num in zip(table.columns, numeric, strict=True)]
    rows = []
    for row, cells in zip(table.rows, table.cells(), strict=True):
        shown = []
        for column, text, num in zip(table.columns, cells, numeric, strict=True):
            sort = column.sort_value(row.get(column.key)) if num else None
            shown.append((text, num, None if sort is None else repr(sort)))
        rows.append(shown)
    return {"table": table, "head": head, "rows": rows}


def render_table(table: Table) -> Markup:
    """A table as HTML: sortable, numbers right-aligned with their exact value to sort by.

    Args:
        table: the table.
    """
    return Markup(_environment().get_template("table.html").render(**_table_view(table)))


def render_block(block: Block) -> Markup:
    """One block as HTML.

    Args:
        block: any block of `cnnarch.report.document`.
    """
    env = _environment()
    if isinstance(block, Paragraph):
        return element("p", None, inline_html(block.text))
    if isinstance(block, Bullets):
        return element("ul", None, join([element("li", None, inline_html(i)) for i in block.items]))
    if isinstance(block, Verdicts):
        return Markup(env.get_template("verdicts.html").render(verdicts=block))
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, Chart):
        shown = block.inline if block.inline is not None else inline_svg(block.svg)
        template = env.get_template("chart.html")
        return Markup(template.render(chart=block, shown=shown, fit=figure_fit(str(shown))))
    if isinstance(block, Picture):
        template = env.get_template("picture.html")
        return Markup(template.render(picture=block, fit=figure_fit(str(block.svg))))
    if isinstance(block, Folded):
        summary = element("summary", None, inline_html(block.summary))
        return element("details", None, summary, render_block(block.block))
    if isinstance(block, Widget):
        return block.html
    if isinstance(block, Columns):
        cells = [
            element("div", {"class": "column"}, join([render_block(b) for b in column]))
            for column in block.columns
        ]
        return element("div", {"class": "columns"}, join(cells))
    if isinstance(block, Contents):
        template = env.get_template("toc.html")
        return Markup(template.render(sections=block.sections, depth=block.depth))
    raise TypeError(f"cannot render {type(block).__name__}")


def render_section(section: Section, level: int = 2) -> Markup:
    """A section and its children, headings from `h<level>` down to h4.

    Args:
        section: the section.
        level: its heading's level.
    """
    template = _environment().get_template("section.html")
    return Markup(template.render(section=section, level=level))


def _widget_data(widgets: list[Widget]) -> list[dict[str, object]]:
    """Each widget's data as JSON inside a <script> element: `<` written as \\u003c, so that
    nothing in it can close the element."""
    return [
        {
            "name": w.name,
            "json": Markup(json.dumps(w.data, separators=(",", ":")).replace("<", "\\u003c")),
        }
        for w in widgets
        if w.data is not None
    ]


def render_html(document: Document) -> str:
    """The page: title, lead, first-screen blocks, contents, sections, data and scripts.

    Args:
        document: the document to render.
    """
    env = _environment()
    placed = any(isinstance(b, Contents) for b in document.blocks())
    toc = Markup("") if placed else render_block(Contents(tuple(document.sections)))
    page = env.get_template("page.html").render(
        document=document,
        toc=toc,
        css=_inlined(STYLESHEETS, "</style"),
        js=_inlined(SCRIPTS, "</script"),
        widgets=_widget_data(document.widgets()),
    )
    return page + "\n"
