"""The lecture as a report: tables (Markdown, CSV, JSON), charts (PNG, SVG) and one HTML page.

`build_report(out, models, batch)` writes `out/index.html`, `out/report.md`, `out/figures/` and
`out/tables/`; `cnnarch report` is this function plus a progress display. Imported lazily, so
that `import cnnarch.report.defaults` does not load matplotlib.
"""

from typing import Any

__all__ = ["TERMINAL_COLUMNS", "ReportFiles", "build_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cnnarch.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'cnnarch.report' has no attribute {name!r}")
