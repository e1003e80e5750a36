"""The degradation experiment (He et al. 2015, Section 4.2 and Fig. 6): deeper plain nets
train worse; residual nets of the same depths do not.

The section shows the `results.json` of `cnnarch experiment degradation`: the reader's own run
when there is one, else the real runs shipped in the package (`SHIPPED`). One run decides the
claims, the longest (in training steps); the others are shown as supporting data, each
described from its own settings. A verdict states the gap's seed spread and sampling error and
says "within noise" where the gap is smaller than twice the larger of them; it is not judged
where a net of the pair did not learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cnnarch.errors import CnnarchError
from cnnarch.experiments.degradation import (
    NOISE_FACTOR,
    GapEstimate,
    Results,
    TableRow,
    chance_error,
    classes_of,
    curves_figure,
    describe_run,
    final_errors,
    gap_estimate,
    load_results,
    mean_curves,
    not_learned,
    settings_line,
    summary_table,
    training_steps,
)
from cnnarch.files import shown_path
from cnnarch.lecture.claims import (
    CANNOT_BE_COMPUTED,
    DEEPER_IS_HARDER,
    DOES_NOT_HOLD,
    HOLDS,
    MEASURED,
    RESIDUAL_TRAINS,
    WITHIN_NOISE,
    Check,
    Idea,
)
from cnnarch.lecture.defaults import DEFAULT_DEGRADATION_RESULTS
from cnnarch.lecture.figures import Cause
from cnnarch.lecture.topic import Topic
from cnnarch.report.document import Block, Chart, Paragraph, Section, Verdicts
from cnnarch.report.markup import foreign
from cnnarch.tables import Column, Table

SOURCE = "He et al. 2015, Section 4.2 and Fig. 6"
PLAIN_CLAIM = "deeper plain nets have higher training error than shallower ones"
RESIDUAL_CLAIM = "residual nets of the same depths do not: the deeper one trains no worse"
RESULTS_DIR = Path(__file__).resolve().parents[1] / "experiments" / "results"
# Real runs of `cnnarch experiment degradation --standard` and `--quick`, the experiment's own
# files, shipped so that the section is never empty; a run of the reader's own takes precedence.
SHIPPED = {preset: RESULTS_DIR / f"degradation_{preset}.json" for preset in ("standard", "quick")}


@dataclass(frozen=True)
class Shown:
    """What the section shows: the runs (the one that decides first), where they come from,
    and why the reader's own file is not among them (`problem`)."""

    runs: tuple[Results, ...]
    path: str  # the results file as the page names it
    yours: bool  # the reader's own run, not the shipped ones
    problem: str = ""  # the default file exists but could not be read


def results_to_show(path: Path | str | None) -> Shown:
    """The results the section shows. A file the user names must exist and be readable (else
    a `CnnarchError`); without one, the default path is tried, and where it holds no results
    the shipped runs are shown, the longest first.

    Args:
        path: the file the user named, or None for the default (`runs/degradation/results.json`).
    """
    if path is not None:
        if not Path(path).is_file():
            raise CnnarchError(
                f"no degradation results at {path}; give the results.json that `cnnarch "
                "experiment degradation` wrote, or leave out --degradation"
            )
        return Shown((load_results(path),), shown_path(path), True)
    default = DEFAULT_DEGRADATION_RESULTS
    problem = ""
    if default.is_file():
        try:
            return Shown((load_results(default),), shown_path(default), True)
        except CnnarchError as err:  # an optional input: the rest of the report stands
            problem = str(err)
    shipped = sorted((load_results(p) for p in SHIPPED.values()), key=training_steps, reverse=True)
    return Shown(tuple(shipped), shown_path(default), False, problem)


def curves_chart(results: Results) -> Chart:
    """The experiment's own figure (the paper's Fig. 6), drawn from the results shown."""
    drawn = curves_figure(results, settings=False)  # the section's text says the settings
    return Chart(
        "degradation",
        "Degradation: plain against residual nets",
        "Training error dashed, test error solid, mean over seeds (the paper's Fig. 6).",
        drawn["png"],
        drawn["svg"],
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


def last_epochs_drop(results: Results, kind: str, depth: int) -> tuple[float, int]:
    """How much the mean training error of (kind, depth) fell over the last quarter of the
    epochs (at least one), and over how many epochs."""
    _, train, _ = mean_curves(results["runs"], kind, depth)
    span = max(1, len(train) // 4)
    return train[-1 - span] - train[-1], span


def _net(kind: str, depth: int) -> str:
    return f"{'ResNet' if kind == 'residual' else 'plain'}-{depth}"


def _not_converged(results: Results, gap: GapEstimate) -> Cause:
    """Why the deeper net ended worse, as far as its curves say: still falling faster than
    the shallower one (not converged), or not."""
    deep, span = last_epochs_drop(results, gap.kind, gap.deep)
    shallow, _ = last_epochs_drop(results, gap.kind, gap.shallow)
    still = deep > shallow
    return Cause(
        f"over the last {span} epoch{'s' if span != 1 else ''} the training error of "
        f"{_net(gap.kind, gap.deep)} fell by {deep:.2f} points and that of "
        f"{_net(gap.kind, gap.shallow)} by {shallow:.2f}: "
        + (
            "the deeper net was still catching up when training stopped (not converged)"
            if still
            else "the deeper net was not catching up; at this budget it trains worse"
        ),
        None,
    )


def judge(results: Results, gap: GapEstimate, claim: str, want_positive: bool) -> Check:
    """The claim on one kind's gap: clearly the way the claim says (holds), within noise, or
    clearly the other way (does not hold, with what the curves say)."""
    kind = "plain" if want_positive else "residual"
    evidence = (
        f"{_net(kind, gap.deep)} minus {_net(kind, gap.shallow)}, final training error: "
        f"{gap.described()}"
    )
    threshold = NOISE_FACTOR * gap.uncertainty
    if gap.within_noise:
        return Check(
            f"degradation-{kind}",
            claim,
            WITHIN_NOISE,
            f"{evidence}: within noise (|gap| ≤ {NOISE_FACTOR:g} × {gap.uncertainty:.2f}).",
            SOURCE,
            MEASURED,
        )
    clear = gap.mean > 0 if want_positive else gap.mean < 0
    if clear:
        return Check(
            f"degradation-{kind}",
            claim,
            HOLDS,
            f"{evidence}: beyond noise (|gap| > {threshold:.2f}).",
            SOURCE,
            MEASURED,
        )
    return Check(
        f"degradation-{kind}",
        claim,
        DOES_NOT_HOLD,
        f"{evidence}: the {'shallower' if want_positive else 'deeper'} net ends worse, beyond "
        f"noise (|gap| > {threshold:.2f}).",
        SOURCE,
        MEASURED,
        cause=_not_converged(results, gap),
    )


def effect_checks(results: Results) -> tuple[Check, Check] | None:
    """The claim's two halves, judged on `results` (None before both kinds ran at two
    depths): plain nets degrade; residual nets do not. Not judged if a net of a pair did not
    learn."""
    plain, residual = gap_estimate(results, "plain"), gap_estimate(results, "residual")
    if plain is None or residual is None:
        return None
    settings = results["settings"]
    classes = classes_of(settings)
    pairs = [r for r in results["runs"] if r["depth"] in (plain.shallow, plain.deep)]
    failed = not_learned(pairs, settings["train_images"], classes) if classes else []
    if failed or classes is None:
        why = (
            ", ".join(
                f"{r['model']} (seed {r['seed']}) ends at {final_errors(r)[0]:.1f}%" for r in failed
            )
            + f", not clearly below chance ({chance_error(classes):.1f}% for {classes} classes, "
            f"less two sampling errors on {settings['train_images']} images)"
            if classes
            else f"the number of classes of {foreign(settings['dataset'])} is not recorded"
        )
        return (
            Check(
                "degradation-plain",
                PLAIN_CLAIM,
                CANNOT_BE_COMPUTED,
                f"Not judged: {why}.",
                SOURCE,
                MEASURED,
            ),
            Check(
                "degradation-residual",
                RESIDUAL_CLAIM,
                CANNOT_BE_COMPUTED,
                f"Not judged: {why}.",
                SOURCE,
                MEASURED,
            ),
        )
    return (
        judge(results, plain, PLAIN_CLAIM, True),
        judge(results, residual, RESIDUAL_CLAIM, False),
    )


def _environment(results: Results) -> str:
    environment = results["environment"]
    machine = ", ".join(
        f"{key} {foreign(str(environment[key]))}"
        for key in ("torch", "device")
        if key in environment
    )
    if "threads" in environment:
        threads = environment["threads"]
        if threads:
            machine += f", {threads} thread{'s' if threads != 1 else ''}"
        else:
            machine += ", threads chosen per run by timing"
    started = environment.get("started_utc")
    return machine + (f"; started {foreign(started)}" if started else "")


def _about(results: Results) -> str:
    """The run in words, from its settings, with its data and machine."""
    return (
        f"{describe_run(results).capitalize()}. Settings: {foreign(settings_line(results))}; "
        f"{_environment(results)}."
    )


def supporting(results: Results) -> Section:
    """A run that does not decide the claims: its table and its gaps, without verdicts."""
    preset = foreign(results["settings"]["preset"])
    section = Section(
        f"degradation-{preset}", f"Supporting data: {describe_run(results).split(':')[0]}"
    )
    lines = []
    for kind in ("plain", "residual"):
        gap = gap_estimate(results, kind)
        if gap is not None:
            noise = "within noise" if gap.within_noise else "beyond noise"
            pair = f"{_net(kind, gap.deep)} minus {_net(kind, gap.shallow)}"
            lines.append(f"{pair}: {gap.described()}, {noise}")
    section.add(
        Paragraph(
            f"{_about(results)} This run does not decide the claims above (a shorter run than "
            "the one that does); it shows how the gaps look at its budget: "
            + ("; ".join(lines) or "no gap yet")
            + "."
        ),
        final_errors_table(summary_table(results["runs"]), preset),
    )
    return section


def build(shown: Shown) -> Topic:
    """The degradation section from `results_to_show`'s choice."""
    section = Section("degradation", "The degradation experiment")
    decisive, *others = shown.runs
    path = f"`{foreign(shown.path)}`"
    if shown.yours:
        intro = f"Results from {path}, your own run: {describe_run(decisive)}."
    else:
        where = (
            f"The results at {path} could not be read ({foreign(shown.problem)})"
            if shown.problem
            else f"No results at {path}"
        )
        intro = (
            f"{where} (run `cnnarch experiment degradation` to make your own, or pass "
            "`cnnarch report --degradation FILE`), so this section shows the results shipped "
            "with cnnarch, real runs of the experiment (its own files, unchanged). The longest "
            "run decides the claims"
            + (", the others are supporting data, below." if others else ".")
        )
    blocks: list[Block] = [Paragraph(intro), Paragraph(_about(decisive))]
    if decisive["runs"]:
        blocks.append(curves_chart(decisive))
    blocks.append(final_errors_table(summary_table(decisive["runs"])))
    checks = effect_checks(decisive)
    ideas: tuple[Idea, ...] = ()
    if checks is not None:
        plain, residual = checks
        blocks.append(Verdicts((plain.shown(), residual.shown())))
        ideas = (
            Idea(DEEPER_IS_HARDER, _short(decisive, "plain", plain), (plain.id,), "degradation"),
            Idea(
                RESIDUAL_TRAINS,
                _short(decisive, "residual", residual),
                (residual.id,),
                "degradation",
            ),
        )
    section.add(*blocks)
    section.children = [supporting(r) for r in others]
    return Topic(section, checks or (), ideas)


def _short(results: Results, kind: str, check: Check) -> str:
    """'plain-56 minus plain-20: +11.84 ± 0.67 points (the 48-epoch run)'."""
    gap = gap_estimate(results, kind)
    assert gap is not None
    epochs = results["settings"]["epochs"]
    return (
        f"{_net(kind, gap.deep)} minus {_net(kind, gap.shallow)}: {gap.mean:+.2f} ± "
        f"{gap.uncertainty:.2f} points of training error ({epochs} epochs)."
    )
