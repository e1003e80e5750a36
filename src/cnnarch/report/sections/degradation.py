"""The degradation experiment (deeper plain nets train worse; ResNets do not), when it has run.

Reads the `results.json` that `cnnarch experiment degradation` writes (format 1, see
`cnnarch.experiments.degradation`) and the figure beside it; other JSON is shown as a plain
table of its records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cnnarch.files import atomic_write_bytes
from cnnarch.report.charts import SavedFigure
from cnnarch.report.context import Context
from cnnarch.report.document import Check, Checks, Paragraph, Section
from cnnarch.report.tables import Column, Table

CLAIM = (
    "deeper plain nets have higher training error than shallower ones; residual nets of the "
    "same depth do not"
)
SOURCE = "He et al. 2015, Section 4.2 and Fig. 6"


def degradation_section(ctx: Context, results: Path) -> Section:
    section = Section("degradation", "The degradation experiment")
    if not results.is_file():
        section.add(
            Paragraph(
                f"No results at `{results}` yet. Run `cnnarch experiment degradation` to train "
                "plain and residual nets of increasing depth, then `cnnarch report` again."
            )
        )
        return section
    try:
        data = json.loads(results.read_text("utf-8"))
    except (OSError, ValueError) as err:
        # An optional input: the rest of the report stands without it.
        section.add(Paragraph(f"`{results}` could not be read ({err}); rerun the experiment."))
        return section
    if isinstance(data, dict) and data.get("experiment") == "degradation" and "table" in data:
        section.add(*experiment_blocks(data, results))
    else:
        section.add(Paragraph(f"Results from `{results}` (not in the experiment's format)."))
        table = records_table(data)
        if table is not None:
            section.add(table)
    section.add(*copy_figures(ctx, results.parent))
    return section


def experiment_blocks(data: dict[str, Any], results: Path) -> list[Any]:
    from cnnarch.experiments.degradation import settings_line

    runs = len(data.get("runs", []))
    state = "complete" if data.get("complete") else f"incomplete ({runs} runs so far)"
    blocks: list[Any] = [
        Paragraph(f"Results from `{results}`, {state}: {settings_line(data)}."),
        final_errors_table(data["table"]),
    ]
    effect = data.get("effect")
    if effect:
        verdict = effect["verdict"]
        blocks.append(
            Checks(
                (
                    Check(
                        CLAIM,
                        {"shown": True, "shown on average": True}.get(verdict, False),
                        f"deep ({effect['deep']} layers) minus shallow ({effect['shallow']}) "
                        f"final training error: plain {effect['plain_gap_mean']:+.2f} points, "
                        f"residual {effect['residual_gap_mean']:+.2f} points, over "
                        f"{len(effect['per_seed'])} seed(s); effect {verdict}.",
                        SOURCE,
                    ),
                )
            )
        )
    return blocks


def final_errors_table(rows: list[dict[str, Any]]) -> Table:
    pct = {"unit": "%", "digits": 2}
    return Table(
        "degradation",
        "Degradation experiment: final errors, mean and standard deviation over seeds",
        [
            Column("model", "model"),
            Column("kind", "kind"),
            Column("depth", "layers"),
            Column("seeds", "seeds"),
            Column("train_error_mean", "training error", **pct),
            Column("train_error_std", "± std", **pct),
            Column("test_error_mean", "test error", **pct),
            Column("test_error_std", "± std", **pct),
        ],
        rows,
        note="Training error: on the (augmented) training batches during the last epoch, as in "
        "the paper's Fig. 6. Measured by this package, not published.",
    )


def _records(data: Any) -> list[dict[str, Any]]:
    """The flat records in a results file of another shape, wherever it keeps them."""
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    if isinstance(data, dict):
        for key in ("table", "results", "rows", "runs"):
            if isinstance(data.get(key), list):
                return _records(data[key])
    return []


def records_table(data: Any) -> Table | None:
    records = [{k: v for k, v in r.items() if _scalar(v)} for r in _records(data)]
    if not records:
        return None
    keys: list[str] = []
    for record in records:
        keys += [k for k in record if k not in keys]
    columns = [Column(k, k.replace("_", " "), digits=None) for k in keys]
    return Table("degradation", "Degradation experiment: results", columns, records)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def copy_figures(ctx: Context, folder: Path) -> list[SavedFigure]:
    """The experiment's own figures (PNG, with its SVG when there is one), copied beside ours."""
    figures = []
    for png in sorted(folder.glob("*.png")):
        name = f"degradation_{png.stem}" if png.stem != "degradation" else "degradation"
        data = png.read_bytes()
        png_out = atomic_write_bytes(ctx.figures_dir / f"{name}.png", data)
        svg = png.with_suffix(".svg")
        svg_out = None
        if svg.is_file():
            svg_out = atomic_write_bytes(ctx.figures_dir / f"{name}.svg", svg.read_bytes())
        figures.append(
            SavedFigure(
                name,
                "Degradation: plain against residual nets",
                "Training error dashed, test error solid, mean over seeds (the paper's Fig. 6); "
                "drawn by the experiment.",
                png_out,
                svg_out,
                data,
            )
        )
    return figures
