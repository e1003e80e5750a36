"""The degradation experiment (deeper plain nets train worse; ResNets do not).

Shows the `results.json` that `cnnarch experiment degradation` writes (format 1, see
`cnnarch.experiments.degradation`): the reader's own run when there is one, else the real runs
shipped in the package (`SHIPPED`: the standard run, then the quick one); the page says which.
The curves are drawn from the results by the experiment's own figure function; a file that is
not the experiment's results is named, with why, and the rest of the report goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnarch.errors import CnnarchError
from cnnarch.experiments.degradation import (
    Effect,
    Results,
    TableRow,
    duration,
    load_results,
    settings_line,
)
from cnnarch.files import atomic_write_bytes, shown_path
from cnnarch.lecture.claims import DEEPER_IS_HARDER, RESIDUAL_TRAINS
from cnnarch.report.charts import SavedFigure
from cnnarch.report.context import Context
from cnnarch.report.document import Check, Checks, Paragraph, Section
from cnnarch.tables import Column, Table

SOURCE = "He et al. 2015, Section 4.2 and Fig. 6"
PLAIN_CLAIM = "deeper plain nets have higher training error than shallower ones"
RESIDUAL_CLAIM = "residual nets of the same depths do not: the deeper one trains no worse"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "experiments" / "results"
# Real runs of `cnnarch experiment degradation --standard` and `--quick`, the experiment's own
# files, shipped so that the section is never empty; a run of the reader's own takes precedence.
SHIPPED = {preset: RESULTS_DIR / f"degradation_{preset}.json" for preset in ("standard", "quick")}


def degradation_section(ctx: Context, results: Path) -> Section:
    section = Section("degradation", "The degradation experiment")
    if not results.is_file():
        return shipped_section(ctx, section, results)
    try:
        data = load_results(results)
    except CnnarchError as err:
        # An optional input: the rest of the report stands without it.
        section.add(Paragraph(f"The results could not be read ({err}); rerun the experiment."))
        return section
    section.add(*experiment_blocks(ctx, data, f"Results from `{shown_path(results)}`"))
    return section


def shipped_section(ctx: Context, section: Section, results: Path) -> Section:
    """The shipped runs: the first in `SHIPPED` in full, the others' tables and verdicts."""
    runs = [load_results(path) for path in SHIPPED.values() if path.is_file()]
    described = "; then ".join(
        f"`--{data['settings']['preset']}` ({_duration(data)} wall time)" for data in runs
    )
    section.add(
        Paragraph(
            f"No results at `{shown_path(results)}` (run `cnnarch experiment degradation` to make "
            "your own, or pass `cnnarch report --degradation FILE`), so this section shows the "
            "results shipped with cnnarch, real runs of the experiment (its own files, unchanged): "
            f"first {described}."
        ),
        *experiment_blocks(ctx, runs[0], _origin(runs[0])),
    )
    for data in runs[1:]:
        preset = data["settings"]["preset"]
        child = Section(f"degradation-{preset}", f"The {preset} run")
        child.add(
            *experiment_blocks(ctx, data, _origin(data), figure=False, key_ideas=False, name=preset)
        )
        section.children.append(child)
    return section


def _origin(data: Results) -> str:
    preset, environment = data["settings"]["preset"], data["environment"]
    threads = environment.get("threads")
    flags = f"--{preset}" + (f" --threads {threads}" if threads else "")
    return (
        f"A run of `cnnarch experiment degradation {flags}` started "
        f"{environment.get('started_utc', '(time not recorded)')}"
    )


def _duration(data: Results) -> str:
    return duration(float(data["wall_seconds"]))


def experiment_blocks(
    ctx: Context,
    data: Results,
    origin: str,
    *,
    figure: bool = True,
    key_ideas: bool = True,
    name: str = "",
) -> list[Any]:
    runs = len(data["runs"])
    state = "complete" if data["complete"] else f"incomplete ({runs} runs so far)"
    environment = data["environment"]
    machine = ", ".join(
        f"{key} {environment[key]}" for key in ("torch", "device") if key in environment
    )
    if "threads" in environment:
        threads = environment["threads"]
        machine += f", {threads} threads" if threads else ", threads chosen per run by timing"
    blocks: list[Any] = [
        Paragraph(
            f"{origin}; {state}: {settings_line(data)}" + (f"; {machine}." if machine else ".")
        )
    ]
    if figure and data["runs"]:
        blocks.append(curves_figure(ctx, data))
    blocks.append(final_errors_table(data["table"], name))
    effect = data["effect"]
    if effect:
        plain, residual = effect_checks(effect)
        blocks.append(Checks((plain, residual)))
        if key_ideas:
            ctx.key_idea(DEEPER_IS_HARDER, _short(plain.evidence), [plain], "degradation")
            ctx.key_idea(RESIDUAL_TRAINS, _short(residual.evidence), [residual], "degradation")
    return blocks


def _short(evidence: str) -> str:
    """The evidence without the per-seed list: "plain-56 minus plain-20 ...: +3.1 points"."""
    return evidence.split(" on average")[0] + " on average."


def effect_checks(effect: Effect) -> tuple[Check, Check]:
    """The claim's two halves, each judged on the per-seed gaps (deep minus shallow final
    training error): plain nets degrade; residual nets do not."""
    deep, shallow = effect["deep"], effect["shallow"]

    def gaps(kind: str) -> list[float]:
        per_seed = effect["per_seed"]
        found = (s["plain_gap"] if kind == "plain" else s["residual_gap"] for s in per_seed)
        return [gap for gap in found if gap is not None]

    def listed(kind: str) -> str:
        values = gaps(kind)
        seeds = f"{len(values)} seed{'s' if len(values) != 1 else ''}"
        return f"{seeds}: {', '.join(f'{g:+.2f}' for g in values)}"

    plain_mean, residual_mean = effect["plain_gap_mean"], effect["residual_gap_mean"]
    return (
        Check(
            PLAIN_CLAIM,
            plain_mean > 0,
            f"plain-{deep} minus plain-{shallow}, final training error: {plain_mean:+.2f} points "
            f"on average ({listed('plain')}).",
            SOURCE,
        ),
        Check(
            RESIDUAL_CLAIM,
            residual_mean <= 0,
            f"ResNet-{deep} minus ResNet-{shallow}, final training error: {residual_mean:+.2f} "
            f"points on average ({listed('residual')}), against {plain_mean:+.2f} for the "
            "plain nets. In this run (a data subset, a few epochs) the deeper ResNet "
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


def curves_figure(ctx: Context, data: Results) -> SavedFigure:
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


def final_errors_table(rows: list[TableRow], name: str = "") -> Table:
    pct = {"unit": "%", "digits": 2}
    return Table(
        f"degradation-{name}" if name else "degradation",
        f"Degradation experiment{f' ({name} run)' if name else ''}: final errors, mean and "
        "standard deviation over seeds",
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
