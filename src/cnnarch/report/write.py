"""A document's files in one folder: `index.html`, `report.md`, `figures/` and `tables/`.

Each file is written atomically; `cnnarch.files.staged_folder` around the call swaps the whole
folder in at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnarch.files import atomic_write_bytes, atomic_write_text
from cnnarch.report.document import Document
from cnnarch.report.html import FIGURES_DIR, TABLES_DIR, render_html
from cnnarch.report.markdown import render_markdown


@dataclass(frozen=True)
class WrittenFiles:
    html: Path
    markdown: Path
    charts: tuple[Path, ...]  # each chart's PNG (its SVG beside it)
    pictures: tuple[Path, ...]  # each picture's SVG
    tables: tuple[Path, ...]  # each table's CSV (its JSON beside it)


def write_document(document: Document, out: Path) -> WrittenFiles:
    """Write `document` into the folder `out` (created if missing).

    Args:
        document: what to write.
        out: the folder.
    """
    tables = []
    for table in document.tables():
        tables.append(atomic_write_text(out / TABLES_DIR / f"{table.name}.csv", table.to_csv()))
        atomic_write_text(out / TABLES_DIR / f"{table.name}.json", table.to_json())
    charts = []
    for chart in document.charts():
        charts.append(atomic_write_bytes(out / FIGURES_DIR / f"{chart.name}.png", chart.png))
        atomic_write_bytes(out / FIGURES_DIR / f"{chart.name}.svg", chart.svg)
    pictures = tuple(
        atomic_write_text(out / FIGURES_DIR / f"{picture.name}.svg", str(picture.svg))
        for picture in document.pictures()
    )
    markdown = atomic_write_text(out / "report.md", render_markdown(document))
    html = atomic_write_text(out / "index.html", render_html(document))
    return WrittenFiles(html, markdown, tuple(charts), pictures, tuple(tables))
