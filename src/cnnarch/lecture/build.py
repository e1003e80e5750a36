"""`build_report`: analyze the models once, build the topics, derive the key ideas and the
tally from their checks, render the document and write every file.

Each topic is a function of the analyses (and, for the published figures, of the other topics'
checks) that returns a `Topic`; nothing is recorded on a shared object, so the order in which
the topics are built cannot change the page. The slow traces (the explorers' training steps and
the planner's) start first in worker processes; their topics are built last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from cnnarch.errors import CnnarchError
from cnnarch.files import staged_folder
from cnnarch.lecture import (
    alexnet,
    comparison,
    definitions,
    degradation,
    googlenet,
    models,
    planner,
    published,
    references,
    resnet,
    vgg,
)
from cnnarch.lecture.analyses import Analyses
from cnnarch.lecture.claims import IDEAS, Check, combined, tally_line
from cnnarch.lecture.defaults import CHART_MODELS, DEFAULT_BATCH, DEFAULT_MODELS, DEFAULT_OUT
from cnnarch.lecture.topic import Topic
from cnnarch.report.document import Block, Columns, Contents, Document, Section
from cnnarch.report.write import write_document
from cnnarch.tables import Column, Table, percent_column
from cnnarch.zoo.registry import model_card

TITLE = "CS231n Lecture 9, computed: CNN architectures"
RESNET_FAMILIES = {"resnet", "resnet-plain", "cifar-resnet", "cifar-plain"}
# The comparison's columns that fit a terminal.
TERMINAL_COLUMNS = ("name", "variant", "top1", "inference_params", "macs", "activations", "train")


@dataclass(frozen=True)
class ReportFiles:
    """What `build_report` wrote, what it found, and how long it took."""

    out: Path
    html: Path
    markdown: Path
    figures: tuple[Path, ...]  # each chart's PNG (its SVG beside it)
    pictures: tuple[Path, ...]  # each diagram's SVG
    tables: tuple[Path, ...]  # each table's CSV (its JSON beside it)
    comparison: Table  # for the terminal summary
    checks: tuple[Check, ...]  # every claim of the page, once
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
            pictures=tuple(map(there, self.pictures)),
            tables=tuple(map(there, self.tables)),
        )


def check_models(models: Sequence[str]) -> tuple[str, ...]:
    """The models, each known to the zoo, in order, without repeats."""
    for name in models:
        model_card(name)  # the registry's error for an unknown name, with suggestions
    if not models:
        raise CnnarchError("no models given; name at least one (`cnnarch models` lists them)")
    return tuple(dict.fromkeys(models))


def lecture_topics(analyses: Analyses, shown: degradation.Shown) -> list[Topic]:
    """The topics in the lecture's order; a model's topic only if that model is selected."""
    chosen = set(analyses.models)
    families = {analyses.card(name).family for name in chosen}
    # The slow traces start now, in the workers, in the order their topics need them (the
    # models' first); their topics are built last.
    traces = models.start(analyses)
    fits = planner.start(analyses)
    middle = []
    if "alexnet" in chosen:
        middle.append(alexnet.build(analyses))
    if "vgg16" in chosen:
        middle.append(vgg.build(analyses))
    if "googlenet" in chosen:
        middle.append(googlenet.build(analyses))
    if families & RESNET_FAMILIES:
        middle.append(resnet.build(analyses))
    middle.append(comparison.build(analyses))
    the_models = models.build(analyses, traces)
    the_planner = planner.build(analyses, fits)
    the_degradation = degradation.build(shown)
    topics = [the_models, *middle, the_planner, the_degradation]
    checks = [c for topic in topics for c in topic.checks]
    return [definitions.build(analyses.batch_size), *topics, published.build(checks)]


def all_checks(topics: Sequence[Topic]) -> tuple[Check, ...]:
    """Every topic's checks, each id once (two checks with one id is a bug)."""
    checks = tuple(c for topic in topics for c in topic.checks)
    ids = [c.id for c in checks]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"checks with the same id: {', '.join(twice)}")
    return checks


def key_ideas_table(topics: Sequence[Topic], checks: Sequence[Check]) -> Table:
    """One line per idea of the lecture: its evidence, the kind of evidence and the verdict of
    the checks that decide it, linked to its section."""
    by_id = {c.id: c for c in checks}
    ideas = sorted((i for t in topics for i in t.ideas), key=lambda i: IDEAS.index(i.idea))
    rows = []
    for idea in ideas:
        decided_by = [by_id[i] for i in idea.checks]
        rows.append(
            {
                "idea": f"[{idea.idea}](#{idea.section})",
                "evidence": idea.evidence,
                "kind": "/".join(dict.fromkeys(c.kind for c in decided_by)),
                "verdict": combined([c.verdict for c in decided_by]),
            }
        )
    return Table(
        "key_ideas",
        "The lecture's key ideas, checked",
        [
            Column("idea", "idea (links to its section)"),
            Column("verdict", "verdict"),  # second: on a phone it shows without scrolling
            Column("evidence", "evidence"),
            Column("kind", "kind"),
        ],
        rows,
        note="Each verdict is that of the claims behind it, as their section shows them; kind: "
        "computed from the architecture, measured by training runs, or published by others.",
    )


def claims_table(checks: Sequence[Check], sections: dict[str, str]) -> Table:
    """Every claim of the page, once, with its verdict and, where it fails, its cause."""
    rows = [
        {
            "claim": check.claim,
            "verdict": check.verdict,
            "kind": check.kind,
            "section": f"[{sections[check.id]}](#{sections[check.id]})",
            "cause": check.cause.text if check.cause else None,
            "explained": None
            if check.cause is None or check.cause.share is None
            else 100 * check.cause.share,
            "source": check.source,
            "id": check.id,
        }
        for check in checks
    ]
    return Table(
        "claims",
        "Every claim, once: its verdict, and where it does not hold, its cause",
        [
            Column("claim", "claim"),
            Column("verdict", "verdict"),
            Column("kind", "evidence"),
            Column("section", "section"),
            Column("cause", "cause, found by the code"),
            percent_column("explained", "share explained", digits=0),
            Column("source", "source"),
            Column("id", "id"),
        ],
        rows,
        note="The tally at the top of the page counts these rows. Share explained: how much of "
        "the difference the cause accounts for (— where the code finds no single cause).",
    )


def _home_sections(topics: Sequence[Topic]) -> dict[str, str]:
    """The id of the top-level section of each check's topic."""
    return {c.id: t.section.id for t in topics for c in t.checks}


def document(analyses: Analyses, topics: Sequence[Topic]) -> Document:
    """The page: title, one line with the tally, the chart beside the key ideas, the
    contents, the topics' sections, every claim once, and the papers cited."""
    checks = all_checks(topics)
    claims = Section("claims", "Every claim, one verdict").add(
        claims_table(checks, _home_sections(topics))
    )
    lead = (
        f"{len(analyses.compared)} networks of the lecture computed by cnnarch's analyzer, "
        f"published figures beside them. {tally_line(checks)} ([every claim](#claims); "
        "[how they are counted and judged](#definitions))."
    )
    cards = [model_card(name) for name in analyses.models]
    sections = [t.section for t in topics] + [claims, references.section(cards)]
    headline = [t.headline for t in topics if t.headline is not None][:1]
    # The first screen lists the sections; each model's card is one click further.
    left: tuple[Block, ...] = (*headline, Contents(tuple(sections), depth=1))
    intro: list[Block] = [Columns((left, (key_ideas_table(topics, checks),)))]
    return Document(TITLE, lead, intro, sections)


def build_report(
    out: Path | str = DEFAULT_OUT,
    models: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH,
    *,
    degradation_results: Path | str | None = None,
    step: Callable[[str], None] | None = None,
) -> ReportFiles:
    """Write the lecture's report to `out`: index.html, report.md, figures/ and tables/.

    The files are written into a staging folder and swapped into `out` when all are written:
    a failure (a full disk, say) leaves the previous report in `out` as it was.

    Args:
        out: the folder to write.
        models: zoo names (default: the lecture's models, `DEFAULT_MODELS`, and in the
            comparison the other networks of the lecture's chart, `CHART_MODELS`).
        batch_size: the batch of the training numbers (SGD with momentum).
        degradation_results: a results.json of `cnnarch experiment degradation`; it must
            exist. None: `runs/degradation/results.json` if there is one, else the runs
            shipped with the package (the page says which).
        step: called with a short label before each unit of work (a progress display).
    """
    started = time.perf_counter()
    if batch_size < 1:
        raise CnnarchError(f"batch_size must be at least 1, got {batch_size}")
    names = check_models(DEFAULT_MODELS if models is None else models)
    shown = degradation.results_to_show(degradation_results)  # a bad file fails before the work
    chart = CHART_MODELS if models is None else ()
    analyses = Analyses(names, batch_size, step or (lambda _label: None), chart)
    final = Path(out)
    try:
        with staged_folder(final, "the report") as stage:
            topics = lecture_topics(analyses, shown)
            page = document(analyses, topics)
            analyses.step("write files")
            written = write_document(page, stage)
    finally:
        analyses.close()
    files = ReportFiles(
        stage,
        written.html,
        written.markdown,
        written.charts,
        written.pictures,
        written.tables,
        next(t for t in page.tables() if t.name == "comparison"),
        all_checks(topics),
        time.perf_counter() - started,
    )
    return files.moved(stage, final)
