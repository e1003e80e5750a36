"""The degradation experiment (deeper plain nets train worse; ResNets do not).

Shows the `results.json` that `cnnarch experiment degradation` writes (format 1, see
`cnnarch.experiments.degradation`): the reader's own run when there is one, else the real run
shipped in the package (`SHIPPED`); the page says which. The curves are drawn from the results
by the experiment's own figure function; other JSON is shown as a plain table of its records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cnnarch.files import atomic_write_bytes
from cnnarch.lecture.claims import DEEPER_IS_HARDER, RESIDUAL_TRAINS
from cnnarch.report.charts import SavedFigure
from cnnarch.report.context import Context
from cnnarch.report.document import Check, Checks, Paragraph, Section
from cnnarch.report.tables import Column, Table

SOURCE = "He et al. 2015, Section 4.2 and Fig. 6"
PLAIN_CLAIM = "deeper plain nets have higher training error than shallower ones"
RESIDUAL_CLAIM = "residual nets of the same depths do not: the deeper one trains no worse"
# A real run of `cnnarch experiment degradation --quick --threads 1`, shipped with the package
# so that the section is never empty; a run of the reader's own takes precedence.
SHIPPED = Path(__file__).resolve().parents[2] / "experiments" / "results" / "degradation_quick.json"


def degradation_section(ctx: Context, results: Path) -> Section:
    section = Section("degradation", "The degradation experiment")
    if results.is_file():
        try:
            data = json.loads(results.read_text("utf-8"))
        except (OSError, ValueError) as err:
            # An optional input: the rest of the report stands without it.
            section.add(Paragraph(f"`{results}` could not be read ({err}); rerun the experiment."))
            return section
        origin = f"Results from `{results}`"
    else:
        data = json.loads(SHIPPED.read_text("utf-8"))
        origin = (
            f"No results at `{results}` (run `cnnarch experiment degradation` to make your own, "
            "or pass `cnnarch report --degradation FILE`), so this section shows the results "
            "shipped with cnnarch: a real run of `cnnarch experiment degradation --quick "
            f"--threads 1` started {data['environment']['started_utc']}"
        )
    if isinstance(data, dict) and data.get("experiment") == "degradation" and "table" in data:
        section.add(*experiment_blocks(ctx, data, origin))
    else:
        section.add(Paragraph(f"Results from `{results}` (not in the experiment's format)."))
        table = records_table(data)
        if table is not None:
            section.add(table)
    return section


def experiment_blocks(ctx: Context, data: dict[str, Any], origin: str) -> list[Any]:
    from cnnarch.experiments.degradation import settings_line

    runs = len(data.get("runs", []))
    state = "complete" if data.get("complete") else f"incomplete ({runs} runs so far)"
    environment = data.get("environment") or {}
    machine = ", ".join(
        f"{key} {environment[key]}" for key in ("torch", "device", "threads") if key in environment
    )
    blocks: list[Any] = [
        Paragraph(
            f"{origin}; {state}: {settings_line(data)}" + (f"; {machine}." if machine else ".")
        )
    ]
    if data.get("runs"):
        blocks.append(curves_figure(ctx, data))
    blocks.append(final_errors_table(data["table"]))
    effect = data.get("effect")
    if effect:
        plain, residual = effect_checks(effect)
        blocks.append(Checks((plain, residual)))
        ctx.key_idea(DEEPER_IS_HARDER, _short(plain.evidence), [plain], "degradation")
        ctx.key_idea(RESIDUAL_TRAINS, _short(residual.evidence), [residual], "degradation")
    return blocks


def _short(evidence: str) -> str:
    """The evidence without the per-seed list: "plain-56 minus plain-20 ...: +3.1 points"."""
    return evidence.split(" on average")[0] + " on average."


def effect_checks(effect: dict[str, Any]) -> tuple[Check, Check]:
    """The claim's two halves, each judged on the per-seed gaps (deep minus shallow final
    training error): plain nets degrade; residual nets do not."""
    seeds = effect["per_seed"]
    deep, shallow = effect["deep"], effect["shallow"]

    def gaps(kind: str) -> str:
        return ", ".join(f"{s[f'{kind}_gap']:+.2f}" for s in seeds)

    plain_mean, residual_mean = effect["plain_gap_mean"], effect["residual_gap_mean"]
    return (
        Check(
            PLAIN_CLAIM,
            plain_mean > 0,
            f"plain-{deep} minus plain-{shallow}, final training error: {plain_mean:+.2f} points "
            f"on average over {len(seeds)} seed(s) ({gaps('plain')}).",
            SOURCE,
        ),
        Check(
            RESIDUAL_CLAIM,
            residual_mean <= 0,
            f"ResNet-{deep} minus ResNet-{shallow}, final training error: {residual_mean:+.2f} "
            f"points on average ({gaps('residual')}), against {plain_mean:+.2f} for the plain "
            "nets. In this short run (few epochs, a data subset) the deeper ResNet "
            + (
                "trains no worse."
                if residual_mean <= 0
                else "still trains worse, by less than the plain nets, as measured."
                if residual_mean < plain_mean
                else "trains worse, as measured."
            ),
            SOURCE,
        ),
    )


def curves_figure(ctx: Context, data: dict[str, Any]) -> SavedFigure:
    """The experiment's own figure (the paper's Fig. 6), drawn from the results shown."""
    from cnnarch.experiments.degradation import render_figure

    ctx.step("figure degradation")
    drawn = render_figure(data)
    png = atomic_write_bytes(ctx.figures_dir / "degradation.png", drawn["png"])
    svg = atomic_write_bytes(ctx.figures_dir / "degradation.svg", drawn["svg"])
    return SavedFigure(
        "degradation",
        "Degradation: plain against residual nets",
        "Training error dashed, test error solid, mean over seeds (the paper's Fig. 6).",
        png,
        svg,
        drawn["png"],
    )


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
