"""`build_report`: analyze the models once, build the sections, write every file."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cnnarch.errors import CnnarchError
from cnnarch.files import atomic_write_text, staged_folder
from cnnarch.lecture.claims import (
    CANNOT_BE_COMPUTED,
    DOES_NOT_HOLD,
    HOLDS,
    IDEAS,
    SIGN_CONVENTION,
    tally,
    verdict_of,
)
from cnnarch.report.context import Context
from cnnarch.report.defaults import (
    DEFAULT_BATCH,
    DEFAULT_DEGRADATION_RESULTS,
    DEFAULT_MODELS,
    DEFAULT_OUT,
)
from cnnarch.report.document import Bullets, Checks, Document, Paragraph, Section
from cnnarch.report.html import FIGURES_DIR, TABLES_DIR, render_html
from cnnarch.report.markdown import render_markdown
from cnnarch.report.sections.alexnet import alexnet_section
from cnnarch.report.sections.comparison import comparison_section
from cnnarch.report.sections.degradation import degradation_section
from cnnarch.report.sections.googlenet import googlenet_section
from cnnarch.report.sections.models import models_section
from cnnarch.report.sections.planner import fit_rows, planner_section
from cnnarch.report.sections.published import published_section
from cnnarch.report.sections.resnet import resnet_section
from cnnarch.report.sections.vgg import vgg_section
from cnnarch.tables import Column, Table
from cnnarch.zoo.registry import model_card

RESNET_FAMILIES = {"resnet", "resnet-plain", "cifar-resnet", "cifar-plain"}
# The comparison's columns that fit a terminal.
TERMINAL_COLUMNS = ("name", "variant", "top1", "inference_params", "macs", "activations", "train")


@dataclass(frozen=True)
class ReportFiles:
    out: Path
    html: Path
    markdown: Path
    figures: tuple[Path, ...]
    tables: tuple[Path, ...]
    comparison: Table  # for the terminal summary
    seconds: float

    def moved(self, old: Path, new: Path) -> ReportFiles:
        """The same files after folder `old` was moved to `new`."""

        def there(path: Path) -> Path:
            return new / path.relative_to(old)

        return replace(
            self,
            out=new,
            html=there(self.html),
            markdown=there(self.markdown),
            figures=tuple(map(there, self.figures)),
            tables=tuple(map(there, self.tables)),
        )


def check_models(models: Sequence[str]) -> tuple[str, ...]:
    """The models, each known to the zoo, in order, without repeats."""
    for name in models:
        model_card(name)  # the registry's error for an unknown name, with suggestions
    if not models:
        raise CnnarchError("no models given; name at least one (`cnnarch models` lists them)")
    return tuple(dict.fromkeys(models))


def lecture_sections(ctx: Context, degradation_results: Path) -> list[Section]:
    """The sections in the lecture's order; a model's section only if that model is selected."""
    chosen = set(ctx.models)
    families = {ctx.card(name).family for name in chosen}
    # The planner's traces need nothing else of the report: the workers start on them now.
    fits = [ctx.in_worker(fit_rows, (name,)) for name in ctx.models]
    sections = [models_section(ctx)]
    if "alexnet" in chosen:
        sections.append(alexnet_section(ctx))
    if "vgg16" in chosen:
        sections.append(vgg_section(ctx))
    if "googlenet" in chosen:
        sections.append(googlenet_section(ctx))
    if families & RESNET_FAMILIES:
        sections.append(resnet_section(ctx))
    sections.append(comparison_section(ctx))
    sections.append(planner_section(ctx, [row for fit in fits for row in fit.result()]))
    sections.append(degradation_section(ctx, degradation_results))
    sections.append(published_section(ctx))
    return sections


def claims_overview(document: Document) -> list[Paragraph | Bullets]:
    """How many of the claims checked in the report hold, and the ones that do not."""
    checks = [c for b in document.blocks() if isinstance(b, Checks) for c in b.items]
    if not checks:
        return []
    counts = tally(checks)
    failed = [c for c in checks if c.verdict == DOES_NOT_HOLD]
    overview: list[Paragraph | Bullets] = [
        Paragraph(
            f"{len(checks)} claims from the lecture and the papers are checked in the sections "
            f"below: {counts[HOLDS]} hold, {counts[DOES_NOT_HOLD]} do not hold, "
            f"{counts[CANNOT_BE_COMPUTED]} cannot be computed here"
            + (". Those that do not hold:" if failed else ".")
        )
    ]
    if failed:
        overview.append(Bullets(tuple(f"“{c.claim}” ({c.source}): {c.evidence}" for c in failed)))
    return overview


def key_ideas_table(ctx: Context) -> Table:
    """One line per idea of the lecture, linked to its section: the evidence and the verdict."""
    order = {idea: i for i, idea in enumerate(IDEAS)}
    rows = [
        {
            "idea": f"[{idea.idea}](#{idea.section})",
            "evidence": idea.evidence,
            "verdict": verdict_of(idea.holds),
        }
        for idea in sorted(ctx.ideas, key=lambda i: order.get(i.idea, len(order)))
    ]
    return Table(
        "key_ideas",
        "The lecture's key ideas, measured",
        [
            Column("idea", "idea (links to its section)"),
            Column("evidence", "measured evidence"),
            Column("verdict", "verdict"),
        ],
        rows,
        note="A verdict holds when every check behind it holds; the section has the numbers.",
    )


def definitions_section(batch: int) -> Section:
    """What each quantity means, said once for the whole page."""
    return Section("definitions", "How the numbers are counted").add(
        Bullets(
            (
                "Parameters: every `nn.Parameter` (weights, biases, batch-norm scales). "
                "'All' includes the training-only heads (GoogLeNet's two auxiliary "
                "classifiers, Inception-v3's one); 'at inference' leaves them out. Every "
                "percentage of parameters names the total it divides by.",
                "MACs: multiply-accumulates of conv and linear layers for one image (the "
                "papers' 'multiply-adds', torchvision's 'GFLOPS').",
                "Forward activations: every value the forward pass allocates for one image, "
                "the input excluded (in-place ReLUs allocate nothing).",
                "A layer's memory, as the lecture counts it: the values in the layer's output "
                "for one image. The slides' totals add the input; the report says so where it "
                "does.",
                f"Training peak: the most bytes alive at once during one training step at "
                f"batch {batch} with SGD and momentum = what is alive throughout (parameters, "
                "momentum, buffers, the input) + the saved activations, gradients and "
                "temporaries alive at the peak.",
                "Variant: the `paper` variant unless another is named beside the number (the "
                "comparison uses torchvision's variants, the ones its accuracy belongs to).",
                "Units: float32 (4 bytes a value); 1 MB = 10⁶ bytes, 1 G = 10⁹, 1 M = 10⁶.",
                SIGN_CONVENTION,
                "Verdicts: holds, does not hold, or cannot be computed (never counted as holding).",
            )
        )
    )


def build_report(
    out: Path | str = DEFAULT_OUT,
    models: Sequence[str] | None = None,
    batch: int = DEFAULT_BATCH,
    *,
    degradation_results: Path | str = DEFAULT_DEGRADATION_RESULTS,
    step: Callable[[str], None] | None = None,
) -> ReportFiles:
    """Write the lecture's report to `out`: index.html, report.md, figures/ and tables/.

    `step` is called with a short label before each unit of work (for a progress display).
    The files are written into a staging folder and swapped into `out` when all are written:
    a failure (a full disk, say) leaves the previous report in `out` as it was.
    """
    started = time.perf_counter()
    if batch < 1:
        raise CnnarchError(f"batch must be at least 1, got {batch}")
    names = check_models(DEFAULT_MODELS if models is None else models)
    final = Path(out)
    with staged_folder(final, "the report") as stage:
        files = _write_report(stage, names, batch, Path(degradation_results), step, started)
    return files.moved(stage, final)


def _write_report(
    out: Path,
    names: tuple[str, ...],
    batch: int,
    degradation_results: Path,
    step: Callable[[str], None] | None,
    started: float,
) -> ReportFiles:
    ctx = Context(out=out, models=names, batch=batch, step=step or (lambda _label: None))
    try:
        return _write_files(ctx, out, names, batch, degradation_results, started)
    finally:
        ctx.close()


def _write_files(
    ctx: Context,
    out: Path,
    names: tuple[str, ...],
    batch: int,
    degradation_results: Path,
    started: float,
) -> ReportFiles:
    sections = [definitions_section(batch), *lecture_sections(ctx, Path(degradation_results))]
    document = Document(
        "CS231n Lecture 9, computed: CNN architectures",
        [
            Paragraph(
                f"{len(names)} networks of the lecture, computed by cnnarch's analyzer; "
                "published figures beside the computed ones, with their source. "
                "[How the numbers are counted](#definitions)."
            ),
            key_ideas_table(ctx),
        ],
        sections,
    )
    document.intro.extend(claims_overview(document))
    ctx.step("write files")
    tables = []
    for table in document.tables():
        tables.append(atomic_write_text(out / TABLES_DIR / f"{table.name}.csv", table.to_csv()))
        atomic_write_text(out / TABLES_DIR / f"{table.name}.json", table.to_json())
    for diagram in document.diagrams():
        atomic_write_text(out / FIGURES_DIR / f"{diagram.name}.svg", diagram.svg)
    markdown = atomic_write_text(out / "report.md", render_markdown(document))
    html = atomic_write_text(out / "index.html", render_html(document))
    figures = tuple(f.png for f in document.figures())
    comparison = next(t for t in document.tables() if t.name == "comparison")
    return ReportFiles(
        out, html, markdown, figures, tuple(tables), comparison, time.perf_counter() - started
    )
