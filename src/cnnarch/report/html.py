"""The report as one self-contained HTML page: inline CSS and JS, figures embedded as PNG (or
drawn as inline SVG where they are interactive).

Nothing is fetched from the network; the page opens from disk offline. The SVG and PNG of
each figure and the CSV and JSON of each table sit beside it and are linked.
"""

from __future__ import annotations

import base64
import html
import re

from cnnarch.report.charts import SavedFigure
from cnnarch.report.diagrams import Diagram
from cnnarch.report.document import Block, Bullets, Checks, Document, Folded, Paragraph, Section
from cnnarch.report.explorer import (
    EXPLORER_JS,
    Explorer,
    explorer_data_html,
    explorer_html,
    layer_bars_html,
)
from cnnarch.tables import Table

FIGURES_DIR = "figures"
TABLES_DIR = "tables"

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1360px; margin: 0 auto; padding: 24px 20px 64px; }
/* Long words in prose (addresses, code) wrap on a phone instead of widening the page. */
p, li { overflow-wrap: anywhere; }
h1 { font-size: 1.9rem; margin: 0 0 .3rem; }
h2 { font-size: 1.45rem; margin: 2.4rem 0 .6rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.15rem; margin: 1.8rem 0 .5rem; }
h4 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
p, li { max-width: 80ch; }
code { font: .9em ui-monospace, "DejaVu Sans Mono", monospace; background: var(--soft);
  padding: 0 .25em; border-radius: 3px; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: .6rem 1rem; margin: 1rem 0 1.5rem; }
nav.toc ul { margin: .2rem 0; padding-left: 1.2rem; }
nav.toc > ul { columns: 2 260px; }
a { color: var(--accent); }
/* A table is as wide as its content and at most as wide as the page: at a desktop width every
   column shows; on a narrow screen the table scrolls sideways as a whole (its title stays
   above, outside the scroll). No fixed height, so every row shows and the page is the only
   vertical scroll. */
.table-box { width: fit-content; max-width: 100%; overflow-x: auto; margin: .6rem 0 .2rem;
  border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; font-size: .86rem; }
.table-title { font-weight: 600; margin: 1.2rem 0 .3rem; }
th, td { padding: .28rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td { max-width: 34ch; }
td.num { white-space: nowrap; }
th { background: var(--soft); text-align: left; vertical-align: bottom; cursor: pointer;
  user-select: none; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
tbody tr:nth-child(even) { background: #fbfcfd; }
tbody tr:hover { background: #eef5fb; }
.meta { color: var(--muted); font-size: .85rem; margin: .1rem 0 1rem; }
.meta a { margin-right: .6rem; }
figure { margin: 1rem 0 1.6rem; max-width: 1040px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
/* A diagram is inline SVG: sharp at any zoom; it shrinks to the page's width (never wider than
   drawn) and its boxes show their exact values on hover. */
figure.diagram { max-width: none; }  /* wide diagrams use the page's full width */
.diagram-box { max-width: 100%; overflow-x: auto; border: 1px solid var(--line);
  border-radius: 6px; width: fit-content; }
.diagram-box svg { display: block; max-width: 100%; height: auto; }
/* On a phone a diagram keeps its drawn size (readable text) and scrolls sideways in its box. */
@media (max-width: 700px) { .diagram-box svg { max-width: none; } }
form.explorer { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: .6rem .8rem; margin: .8rem 0; max-width: 640px; }
form.explorer label { margin-right: 1rem; white-space: nowrap; }
form.explorer input { width: 6.5em; }
form.explorer dl { margin: .5rem 0 0; }
form.explorer dl div { display: flex; flex-wrap: wrap; justify-content: space-between;
  gap: 0 1rem; border-bottom: 1px solid var(--line); padding: .15rem 0; }
form.explorer dt { color: var(--muted); }
form.explorer dd { margin: 0; font-variant-numeric: tabular-nums; }
/* A bar or diagram box with exact values: shown in #tip on hover and on keyboard focus. */
#tip { position: fixed; z-index: 10; max-width: min(440px, 92vw); padding: .4rem .6rem;
  background: var(--ink); color: #fff; font-size: .8rem; line-height: 1.35; border-radius: 4px;
  pointer-events: none; }
[data-tip] { cursor: default; }
[data-tip]:focus { outline: none; }
[data-tip]:focus > rect:first-of-type { stroke: var(--ink); stroke-width: 2.5; }
form.explorer select:disabled { opacity: .5; }
figcaption { color: var(--muted); font-size: .88rem; max-width: 80ch; }
ul.checks { list-style: none; padding-left: 0; }
ul.checks li { margin: .4rem 0; padding: .4rem .7rem; border-left: 4px solid var(--line);
  background: var(--soft); border-radius: 0 6px 6px 0; }
ul.checks li.holds { border-color: #009E73; }
ul.checks li.fails { border-color: #D55E00; }
.verdict { font-weight: 700; margin-right: .4rem; }
.holds .verdict { color: #007a5a; }
.fails .verdict { color: #b34700; }
.source { color: var(--muted); font-size: .85rem; }
details { margin: .6rem 0; }
summary { cursor: pointer; font-weight: 600; }
"""

# Click a column heading to sort by it. Text sorts with the digits in it read as numbers
# ("features.2" before "features.10"); numeric columns sort by each cell's exact value
# (data-sort: the stored number, or the value a printed figure such as "1072K" reads as);
# cells without one (missing values) stay last in both directions.
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, index) {
    th.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var numeric = th.classList.contains("num");
      function key(row) {
        var cell = row.cells[index];
        if (!numeric) { return cell.textContent; }
        return cell.hasAttribute("data-sort") ? parseFloat(cell.getAttribute("data-sort")) : null;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        var order = numeric ? x - y : x.localeCompare(y, undefined, {numeric: true});
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


# Hovering or focusing an element with data-tip shows its aria-label (the same text a screen
# reader reads) in one floating box. In each picture one element is in the tab order; the arrow
# keys move between its elements.
TIP_JS = """
(function () {
  var tip = document.createElement("div");
  tip.id = "tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  document.body.appendChild(tip);
  var current = null;
  function place() {
    var box = current.getBoundingClientRect();
    var left = Math.min(Math.max(4, box.left), window.innerWidth - tip.offsetWidth - 4);
    var top = box.bottom + 6;
    if (top + tip.offsetHeight > window.innerHeight) { top = box.top - tip.offsetHeight - 6; }
    tip.style.left = left + "px";
    tip.style.top = Math.max(4, top) + "px";
  }
  function show(event) {
    var el = event.target.closest && event.target.closest("[data-tip]");
    if (!el) { return; }
    current = el;
    tip.textContent = el.getAttribute("aria-label");
    tip.hidden = false;
    place();
  }
  function hide() { current = null; tip.hidden = true; }
  document.addEventListener("mouseover", show);
  document.addEventListener("focusin", show);
  document.addEventListener("mouseout", hide);
  document.addEventListener("focusout", hide);
  // Focus scrolls an element into view: the box follows it.
  window.addEventListener("scroll", function () { if (current) { place(); } }, {passive: true});
  document.querySelectorAll("svg").forEach(function (svg) {
    var items = Array.from(svg.querySelectorAll("[data-tip]"));
    if (!items.length) { return; }
    items.forEach(function (el) {
      var title = el.querySelector("title");
      if (title) { title.remove(); }  // the box above replaces the browser's own tooltip
    });
    items[0].tabIndex = 0;
    svg.addEventListener("keydown", function (event) {
      var moves = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1};
      var index = items.indexOf(event.target);
      if (!(event.key in moves) || index < 0) { return; }
      var next = items[Math.min(items.length - 1, Math.max(0, index + moves[event.key]))];
      event.target.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
      event.preventDefault();
    });
  });
})();
"""


def inline(text: str) -> str:
    """Escape `text` for HTML; `backticks` become <code>, [text](#id) a link within the page."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\[([^\]]+)\]\(#([\w-]+)\)", r'<a href="#\2">\1</a>', escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def render_table(table: Table) -> str:
    numeric = table.numeric_columns()
    head = "".join(
        f'<th class="num" scope="col">{inline(c.heading())}</th>'
        if num
        else f'<th scope="col">{inline(c.heading())}</th>'
        for c, num in zip(table.columns, numeric, strict=True)
    )
    body_rows = []
    for row, cells in zip(table.rows, table.cells(), strict=True):
        tds = []
        for col, text, num in zip(table.columns, cells, numeric, strict=True):
            if not num:
                tds.append(f"<td>{inline(text)}</td>")
                continue
            value = col.sort_value(row.get(col.key))
            sort = "" if value is None else f' data-sort="{value!r}"'
            tds.append(f'<td class="num"{sort}>{html.escape(text)}</td>')
        body_rows.append("<tr>" + "".join(tds) + "</tr>")
    links = (
        f'<a href="{TABLES_DIR}/{table.name}.csv">CSV</a>'
        f'<a href="{TABLES_DIR}/{table.name}.json">JSON</a>'
    )
    note = f" {inline(table.note)}" if table.note else ""
    return (
        f'<p class="table-title" id="title-{table.name}">{inline(table.title)}</p>'
        f'<div class="table-box"><table class="sortable" id="table-{table.name}" '
        f'aria-labelledby="title-{table.name}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body_rows)}</tbody></table></div>"
        f'<p class="meta">{links}{note}</p>'
    )


def render_figure(figure: SavedFigure) -> str:
    data = base64.b64encode(figure.png_bytes).decode("ascii")
    svg = f'<a href="{FIGURES_DIR}/{figure.name}.svg">SVG</a> · ' if figure.svg else ""
    picture = (
        f'<div class="diagram-box">{figure.inline_svg}</div>'
        if figure.inline_svg
        else f'<img src="data:image/png;base64,{data}" alt="{html.escape(figure.title)}">'
    )
    return (
        f'<figure id="figure-{figure.name}">{picture}'
        f"<figcaption><strong>{inline(figure.title)}.</strong> {inline(figure.caption)} "
        f"{svg}"
        f'<a href="{FIGURES_DIR}/{figure.name}.png">PNG</a></figcaption></figure>'
    )


def render_diagram(diagram: Diagram) -> str:
    return (
        f'<figure class="diagram" id="{diagram.name}"><div class="diagram-box">{diagram.svg}</div>'
        f"<figcaption><strong>{inline(diagram.title)}.</strong> {inline(diagram.caption)} "
        f'<a href="{FIGURES_DIR}/{diagram.name}.svg">SVG</a></figcaption></figure>'
    )


def render_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Checks):
        items = []
        for check in block.items:
            css = {True: "holds", False: "fails", None: "open"}[check.holds]
            source = ""
            if check.source:
                source = f' <span class="source">({inline(check.source)})</span>'
            items.append(
                f'<li class="{css}"><span class="verdict">{check.verdict}:</span>'
                f"“{inline(check.claim)}”{source}<br>{inline(check.evidence)}</li>"
            )
        return '<ul class="checks">' + "".join(items) + "</ul>"
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, SavedFigure):
        return render_figure(block)
    if isinstance(block, Diagram):
        return render_diagram(block)
    if isinstance(block, Explorer):
        return explorer_html(block) + layer_bars_html(block)
    if isinstance(block, Folded):
        summary = f"<summary>{inline(block.summary)}</summary>"
        return f"<details>{summary}{render_table(block.block)}</details>"
    raise TypeError(f"cannot render {type(block).__name__}")


def render_section(section: Section, level: int = 2) -> str:
    parts = [f'<section id="{section.id}"><h{level}>{inline(section.title)}</h{level}>']
    parts += [render_block(b) for b in section.blocks]
    parts += [render_section(child, min(level + 1, 4)) for child in section.children]
    parts.append("</section>")
    return "\n".join(parts)


def render_toc(sections: list[Section]) -> str:
    def items(secs: list[Section]) -> str:
        out = []
        for s in secs:
            sub = f"<ul>{items(s.children)}</ul>" if s.children else ""
            out.append(f'<li><a href="#{s.id}">{inline(s.title)}</a>{sub}</li>')
        return "".join(out)

    return f'<nav class="toc"><strong>Contents</strong><ul>{items(sections)}</ul></nav>'


def render_html(document: Document) -> str:
    body = "\n".join(render_block(b) for b in document.intro)
    sections = "\n".join(render_section(s) for s in document.sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(document.title)}</title><style>{CSS}</style></head>\n"
        f"<body><main><h1>{inline(document.title)}</h1>\n{body}\n"
        f"{render_toc(document.sections)}\n{sections}\n</main>"
        f"{explorer_data_html(document.explorers())}"
        f"<script>{SORT_JS}{EXPLORER_JS}{TIP_JS}</script></body></html>\n"
    )
