"""GoogLeNet as the lecture and the paper present it: Table 1 computed, the Inception module's
arithmetic (naive against 1x1 bottlenecks), the auxiliary classifiers, and the paper's claims.

Table 1 prints weights with K = 1024 (the only place in the report where K is not 1000; its
columns say so) and ops as multiply-adds with M = 10^6. Each printed figure is judged against
the computed one (`cnnarch.lecture.figures`); where one differs, `table1_cause` finds what the
row's own numbers say about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnarch import units
from cnnarch.experiments.inception import InceptionCost, InceptionModule, lecture_example
from cnnarch.lecture.claims import (
    AUXILIARY,
    BOTTLENECKS,
    Check,
    Idea,
    claim_check,
    figure_check,
)
from cnnarch.lecture.diagrams import inception_diagram
from cnnarch.lecture.figures import (
    Cause,
    Figure,
    Term,
    agreement,
    closest_factor_slip,
    difference,
    excess_over_budget,
    miscounted_term,
    printed_unit,
    share_of_gap,
)
from cnnarch.lecture.topic import Topic
from cnnarch.report.charts import draw_chart, new_figure
from cnnarch.report.document import Chart, Paragraph, Section, Verdicts
from cnnarch.tables import Column, Table, macs_column, percent_column
from cnnarch.units import parse_printed, signed_percent
from cnnarch.zoo.registry import create_model, published

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from cnnarch.analysis import Summary
    from cnnarch.lecture.analyses import Analyses

# The modules of the zoo's GoogLeNet behind each row of Table 1, in the table's order.
TABLE1_MODULES: tuple[tuple[str, ...], ...] = (
    ("conv1",),
    ("maxpool1",),
    ("conv2", "conv3"),
    ("maxpool2",),
    ("inception3a",),
    ("inception3b",),
    ("maxpool3",),
    ("inception4a",),
    ("inception4b",),
    ("inception4c",),
    ("inception4d",),
    ("inception4e",),
    ("maxpool4",),
    ("inception5a",),
    ("inception5b",),
    ("avgpool",),
    ("dropout",),
    ("fc",),
    (),  # softmax: part of the loss, not of the model
)
AUX_HEADS = ("aux1", "aux2")
K = 1024  # Table 1's "K" for parameters
TABLE1_SOURCE = "Szegedy et al. 2015, Table 1"
PAPER_TEXT = "Szegedy et al. 2015, text"
SLIDES = "CS231n 2017 Lecture 9 slides"
BUDGET_MACS = 1.5e9  # "a computational budget of 1.5 billion multiply-adds at inference time"


def weights(module: nn.Module) -> int:
    """Weights without biases (Table 1's convention): parameters with more than one dimension."""
    return sum(p.numel() for p in module.parameters() if p.dim() > 1)


def _hwc(shape: tuple[int, ...]) -> str:
    return units.shape((*shape[1:], shape[0])) if len(shape) == 3 else str(shape[-1])


def _gap(computed: int | None, printed: float | None) -> float | None:
    if not computed or printed is None:
        return None
    return 100 * difference(computed, printed)


def _layers(model: nn.Module, paths: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers of a row, by module path."""
    found = []
    for path in paths:
        for name, module in model.get_submodule(path).named_modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                found.append((f"{path}.{name}" if name else path, module))
    return found


def _terms(layers: list[tuple[str, nn.Module]]) -> list[Term]:
    """The weights of each layer of a row: the products its params figure sums."""
    return [Term(f"`{path}`", weights(module)) for path, module in layers]


def _factors(layers: list[tuple[str, nn.Module]]) -> list[Term]:
    """A one-conv row's weights as the product of its factors; none for other rows."""
    if len(layers) != 1 or not isinstance(layers[0][1], nn.Conv2d):
        return []
    conv = layers[0][1]
    k = conv.kernel_size[0]
    return [
        Term(f"the patch ({k}x{k})", k * conv.kernel_size[1]),
        Term(f"the input depth ({conv.in_channels})", conv.in_channels),
        Term(f"the filter count ({conv.out_channels})", conv.out_channels),
    ]


def table1_rows(summary: Summary, model: nn.Module | None = None) -> list[dict[str, Any]]:
    """Table 1's rows beside the computed ones: output, weights (K = 1024) and multiply-adds,
    each with its gap (computed relative to printed) and its class of agreement."""
    if model is None:
        with torch.device("meta"):
            model = create_model("googlenet")
    by_path = {row.path: row for row in summary.collapse(1).rows}
    rows = []
    printed_rows = published()["googlenet_paper"]["rows"]
    for paper_row, paths in zip(printed_rows, TABLE1_MODULES, strict=True):
        kind, patch, out, *_rest, params, ops = paper_row
        found = [by_path[p] for p in paths if p in by_path]
        shape = tuple(int(d) for d in found[-1].output_shapes[0][1:]) if found else None
        row = {
            "type": kind,
            "patch": patch,
            "printed_output": out,
            "output": None if shape is None else _hwc(shape),
            "positions": None if shape is None or len(shape) != 3 else shape[1] * shape[2],
            "printed_params_text": params,
            "printed_params": None if params is None else parse_printed(params, k=K),
            "weights": sum(weights(model.get_submodule(p)) for p in paths) if paths else None,
            "terms": _terms(_layers(model, paths)),
            "factors": _factors(_layers(model, paths)),
            "printed_ops_text": ops,
            "printed_ops": None if ops is None else parse_printed(ops),
            "macs": sum(int(r.macs) for r in found) if found else None,
        }
        row["params_gap"] = _gap(row["weights"], row["printed_params"])
        row["ops_gap"] = _gap(row["macs"], row["printed_ops"])
        classes = []
        for quantity, computed, printed, k in (
            ("weights", row["weights"], params, K),
            ("multiply-adds", row["macs"], ops, 1e3),
        ):
            if computed and printed is not None:
                found = agreement(computed, printed, k=k, whole=True)
                classes.append(f"{quantity}: {found.name}")
        row["agreement"] = "; ".join(classes) or None
        rows.append(row)
    return rows


def row_label(row: dict[str, Any]) -> str:
    """'inception (4c)', 'convolution 7x7/2'."""
    return f"{row['type']} {row['patch']}".strip()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def table1_cause(row: dict[str, Any], quantity: str) -> Cause:
    """What a row of Table 1 says about its own figure that differs (`quantity`: "weights" or
    "multiply-adds").

    A conv's multiply-adds are its weights x its output positions (H x W), so a row's two
    columns are tied. The ops column rounds (every row that agrees does), so a value "gives"
    the printed ops when, within its own printed precision, it rounds to them. If the computed
    weights give them and the printed weights do not, the params column alone slipped; if the
    printed weights give them, one miscount feeds both columns (and the ops follow from it).

    Args:
        row: a row of `table1_rows`.
        quantity: which of its printed figures differs.
    """
    positions = row["positions"]
    params, ops = row["printed_params_text"], row["printed_ops_text"]
    half_ops = printed_unit(ops, whole=True) / 2
    half_weight = printed_unit(params, K, whole=True) / 2

    def gives_ops(low: float, high: float) -> bool:
        return low <= row["printed_ops"] + half_ops and high >= row["printed_ops"] - half_ops

    implied = row["printed_params"] * positions  # the ops the printed weights give
    from_printed = gives_ops(
        (row["printed_params"] - half_weight) * positions,
        (row["printed_params"] + half_weight) * positions,
    )
    from_computed = gives_ops(row["macs"], row["macs"])
    where = units.shape(row["output"].split("x")[:2], "×")
    if quantity == "multiply-adds":
        if from_printed:
            return Cause(
                f"the row's ops are its printed weights × its {where} output positions: "
                f"{params} (= {units.number(row['printed_params'], 1)}) × {positions:,} = "
                f"{units.number(implied)} ≈ {ops}",
                share_of_gap(implied, row["macs"], row["printed_ops"]),
            )
        terms = [Term(t.label, t.value * positions) for t in row["terms"]]
        return miscounted_term(terms, ops, what="row's ops", whole=True) or Cause(
            "neither the row's printed weights nor one of its products gives it", None
        )
    found = miscounted_term(row["terms"], params, K, "row's weights", whole=True)
    if found is not None:
        return found
    miscount = row["printed_params"] - row["weights"]
    off = f"{units.number(abs(miscount))} weights {'too many' if miscount > 0 else 'too few'}"
    if from_computed and not from_printed:
        return Cause(
            f"the row's own ops, {ops} (= {positions:,} positions × "
            f"{units.number(row['printed_ops'] / positions)} weights), agree with the computed "
            f"{units.number(row['macs'])} multiply-adds and not with the printed weights: only "
            "the params column differs from the filter counts printed in the same row, a slip "
            "in that column",
            1.0,
        )
    if from_printed and from_computed:
        return Cause(
            f"the row's ops ({ops}) are too coarse to tell which column slipped: both the "
            f"computed and the printed weights × {positions:,} positions give them; the printed "
            f"weights are {off} against the row's filter counts",
            None,
        )
    if from_printed and row["factors"]:
        cause = closest_factor_slip(row["factors"], params, K, whole=True)
        return Cause(
            "the row's ops follow from its printed weights, so one miscount feeds both columns: "
            + cause.text,
            cause.share,
        )
    if from_printed:
        return Cause(
            f"the row's printed ops follow from its printed weights ({params} × {positions:,} "
            f"positions = {units.number(implied / 1e6, 1)}M ≈ {ops}): one miscount of {off} "
            "feeds both columns; no single product of the row's filter counts, counted twice or "
            "left out, explains it",
            None,
        )
    return Cause(
        "neither of the row's columns agrees with its filter counts or with the other, and no "
        "single product, counted twice or left out, explains it",
        None,
    )


def table1_checks(rows: list[dict[str, Any]]) -> list[Check]:
    """One check per printed weights and ops figure of Table 1."""
    checks = []
    for row in rows:
        label = row_label(row)
        for quantity, computed, printed, k, tag in (
            ("weights", row["weights"], row["printed_params_text"], K, "weights"),
            ("multiply-adds", row["macs"], row["printed_ops_text"], 1e3, "ops"),
        ):
            if not computed or printed is None:
                continue
            quantity_ = f"Table 1 {label}: {quantity}"
            figure = Figure("GoogLeNet", quantity_, printed, computed, TABLE1_SOURCE, k, whole=True)
            shown = "K = 1024" if k == K else "M = 10⁶"
            checks.append(
                figure_check(
                    f"googlenet-table1-{_slug(label)}-{tag}",
                    f"Table 1, {label}: {tag} {printed} ({shown})",
                    figure,
                    cause=None if figure.agreement.holds else table1_cause(row, quantity),
                )
            )
    return checks


def table1(rows: list[dict[str, Any]]) -> Table:
    shown = [{k: v for k, v in row.items() if k not in ("terms", "factors")} for row in rows]
    return Table(
        "googlenet_table1",
        "GoogLeNet Table 1: printed beside computed (paper variant, 224×224, one image)",
        [
            Column("type", "type"),
            Column("patch", "patch/stride"),
            Column("printed_output", "output, printed"),
            Column("output", "output, computed"),
            Column("printed_params_text", "params, printed (K = 1024)", k=K),
            Column(
                "weights",
                "weights, computed",
                unit="weights",
                show_unit="K = 1024",
                scale=K,
                digits=1,
            ),
            percent_column("params_gap", "params gap"),
            Column("printed_ops_text", "ops, printed (M = 10⁶)"),
            macs_column("macs", "MACs, computed", prefix="M", digits=1),
            percent_column("ops_gap", "ops gap"),
            Column("agreement", "printed against computed"),
        ],
        shown,
        note="Printed: Szegedy et al. 2015, Table 1, whose params are weights only with "
        "K = 1024 (so are the computed weights beside them, and only here: K = 1000 everywhere "
        "else on this page); ops = multiply-adds, M = 10⁶. Gap: computed relative to printed. "
        "The classes of agreement are defined in the page's first section.",
    )


@dataclass(frozen=True)
class AuxHeads:
    """The two training-only classifiers and the parameters with and without them."""

    params: int  # of both heads
    total: int  # every parameter of the model
    per_head: dict[str, int]

    @property
    def without(self) -> int:
        return self.total - self.params


def aux_heads(training: Summary) -> AuxHeads:
    """From a training-mode summary (the heads run only in training)."""
    rows = {row.path: row for row in training.collapse(1).rows}
    per_head = {p: int(rows[p].params) for p in AUX_HEADS if p in rows}
    return AuxHeads(sum(per_head.values()), int(training.total_params), per_head)


def aux_check(summary: Summary, heads: AuxHeads) -> Check:
    """The heads are extra parameters that an inference pass does not use."""
    used = int(summary.rows[0].params)
    return claim_check(
        "googlenet-auxiliary-heads",
        "auxiliary classifiers at intermediate layers: used in training only",
        heads.params > 0 and used == heads.without,
        f"the {len(heads.per_head)} heads hold {units.number(heads.params)} of all "
        f"{units.number(heads.total)} parameters ({heads.params / heads.total:.0%}); an inference "
        f"pass uses {units.number(used)}.",
        PAPER_TEXT,
    )


def budget_check(summary: Summary, rows: list[dict[str, Any]]) -> Check:
    """The paper's 1.5 billion multiply-adds at inference, with which rows of its own Table 1
    account for the excess."""
    macs = summary.total_macs
    figure = Figure(
        "GoogLeNet", "multiply-adds at inference (a budget)", "1.5G", macs, PAPER_TEXT, bound=True
    )
    printed = [(row_label(r), r["printed_ops"], r["macs"]) for r in rows if r["printed_ops"]]
    return figure_check(
        "googlenet-budget",
        "a budget of 1.5 billion multiply-adds at inference",
        figure,
        evidence=f"computed {macs / 1e9:.3f} G multiply-adds per 224×224 image, "
        f"{signed_percent(difference(macs, BUDGET_MACS))} relative to the 1.5 G budget"
        + (": within it." if macs <= BUDGET_MACS else ": over it."),
        cause=excess_over_budget(printed, BUDGET_MACS, macs),
    )


def fewer_params_check(heads: AuxHeads, alexnet_params: int, rows: list[dict[str, Any]]) -> Check:
    """'12x fewer parameters than AlexNet' against the architectures, with what the paper's
    own Table 1 gives and where 12 comes from."""
    ratio = alexnet_params / heads.without
    quantity = "AlexNet's parameters / GoogLeNet's (a ratio)"
    figure = Figure("GoogLeNet", quantity, 12, ratio, PAPER_TEXT)
    table_sum = sum(r["printed_params"] for r in rows if r["printed_params"])
    alexnet_printed = parse_printed("60M")  # AlexNet's paper: "60 million parameters"
    lecture = parse_printed("5M")  # the lecture: "Only 5 million parameters! 12x less"
    cause = Cause(
        f"12 is AlexNet's printed 60M over the lecture's 'only 5 million' for GoogLeNet "
        f"(60M / 5M = {alexnet_printed / lecture:.0f}); the paper's own Table 1 sums to "
        f"{units.number(table_sum / 1e6, 2)}M weights (K = 1024), which gives "
        f"{alexnet_printed / table_sum:.1f}×, and the architecture {units.number(heads.without)} "
        "parameters: neither gives 5M",
        share_of_gap(alexnet_printed / lecture, ratio, 12),
    )
    return figure_check(
        "googlenet-12x-fewer-params",
        "12x fewer parameters than AlexNet",
        figure,
        evidence=f"AlexNet {units.number(alexnet_params)} / GoogLeNet without its training-only "
        f"heads {units.number(heads.without)} = {ratio:.1f}× (with the heads: "
        f"{alexnet_params / heads.total:.1f}×).",
        cause=cause,
    )


@dataclass(frozen=True)
class InceptionExample:
    naive: InceptionCost
    bottleneck: InceptionCost
    checks: tuple[Check, ...]


def products(cost: InceptionCost) -> list[Term]:
    """The module's multiply-adds as the slide writes them, one product per conv:
    [3x3 conv, 192] 28x28x192x3x3x64, and so on (the analyzer's count of each conv)."""
    from cnnarch.analysis import analyze

    config = cost.config
    with torch.device("meta"):
        module = InceptionModule(config, bias=cost.bias)
    summary = analyze(module, (config.in_channels, config.size, config.size))
    terms = []
    for row in summary.rows:
        if not row.is_leaf or not row.macs:
            continue
        conv = module.get_submodule(row.path)
        k = conv.kernel_size[0]
        size = f"{config.size}x{config.size}x{conv.out_channels}x{k}x{k}x{conv.in_channels}"
        terms.append(Term(f"[{k}x{k} conv, {conv.out_channels}] ({size})", int(row.macs)))
    return terms


def inception_example() -> InceptionExample:
    """The lecture's module on 28x28x256, naive and with 1x1 bottlenecks, against the slide."""
    naive, bottleneck = lecture_example(bias=False)
    example = published()["cs231n_lecture9_2017"]["inception_module_example"]
    checks = []
    for label, cost in (("naive", naive), ("bottleneck", bottleneck)):
        printed = example[label]["conv_ops_as_printed"]
        depth = example[label]["output_depth"]
        figure = Figure("Inception module", f"{label} ops", printed, cost.total_macs, SLIDES)
        cause = None
        if not figure.agreement.holds:
            cause = miscounted_term(products(cost), printed, what="slide's total") or Cause(
                "the slide's own products, counted once each, do not give it", None
            )
        checks.append(
            figure_check(
                f"inception-module-{label}",
                f"{label}: {printed} ops, output depth {depth}",
                figure,
                evidence=f"{figure.summary()}; output {cost.output_depth} deep"
                + ("." if cost.output_depth == depth else f", not {depth}."),
                cause=cause,
            )
        )
    ratio = naive.total_macs / bottleneck.total_macs
    checks.append(
        claim_check(
            "inception-module-bottlenecks",
            "1x1 bottleneck layers reduce the module's cost (and keep its depth from growing)",
            ratio > 1 and bottleneck.output_depth < naive.output_depth,
            f"{units.number(bottleneck.total_macs / 1e6, 0)}M instead of "
            f"{units.number(naive.total_macs / 1e6, 0)}M multiply-adds ({ratio:.1f}× less); "
            f"output {bottleneck.output_depth} deep instead of {naive.output_depth}.",
            SLIDES,
        )
    )
    return InceptionExample(naive, bottleneck, tuple(checks))


def inception_table(naive: InceptionCost, bottleneck: InceptionCost) -> Table:
    rows = []
    for version, cost in (("naive", naive), ("1x1 bottlenecks", bottleneck)):
        for branch in cost.branches:
            rows.append(
                {
                    "version": version,
                    "branch": branch.layers,
                    "depth": branch.out_channels,
                    "weights": branch.params,
                    "macs": branch.macs,
                }
            )
        rows.append(
            {
                "version": version,
                "branch": "total (concatenated)",
                "depth": cost.output_depth,
                "weights": cost.total_params,
                "macs": cost.total_macs,
            }
        )
    return Table(
        "inception_module_example",
        "The lecture's Inception module on a 28×28×256 input, naive and with 1x1 bottlenecks",
        [
            Column("version", "module"),
            Column("branch", "branch"),
            Column("depth", "output depth"),
            Column("weights", "weights"),
            macs_column("macs", "ops (multiply-adds)", prefix="M", digits=1),
        ],
        rows,
        note="Built from nn.Conv2d / nn.MaxPool2d and counted by the analyzer; weights only "
        "(no biases), as the slide counts. `cnnarch.inception_cost(...)` computes any module.",
    )


def inception_chart(naive: InceptionCost, bottleneck: InceptionCost) -> Chart:
    def draw() -> MplFigure:
        fig, (ax,) = new_figure(height=3.8)
        labels = ["1x1", "3x3", "5x5", "pool"]
        y = torch.arange(len(labels)).numpy()
        ax.barh(
            y + 0.2,
            [b.macs / 1e6 for b in naive.branches],
            height=0.4,
            label=f"naive: {units.number(naive.total_macs / 1e6, 0)}M total",
            color="#D55E00",
        )
        ax.barh(
            y - 0.2,
            [b.macs / 1e6 for b in bottleneck.branches],
            height=0.4,
            label=f"1x1 bottlenecks: {units.number(bottleneck.total_macs / 1e6, 0)}M total",
            color="#009E73",
        )
        ax.set_yticks(y, [f"{lab} branch" for lab in labels])
        ax.invert_yaxis()
        ax.set_xlabel("multiply-adds per image (millions)")
        ax.set_title("Inception module on 28×28×256: ops per branch")
        ax.legend(loc="lower right")
        return fig

    return draw_chart(
        "inception_module_ops",
        "Inception module: naive vs 1x1 bottlenecks",
        "Multiply-adds of each branch; the 1x1 convs shrink the depth the 3x3 and 5x5 convs see "
        "from 256 to 64.",
        draw,
    )


def build(analyses: Analyses) -> Topic:
    """GoogLeNet's section: Table 1 computed, the paper's claims, the Inception module."""
    summary = analyses.forward("googlenet")
    rows = table1_rows(summary, analyses.model("googlenet"))
    # The heads run only in training mode, so their rows come from the training analysis.
    heads = aux_heads(analyses.training("googlenet"))
    claims = [budget_check(summary, rows), aux_check(summary, heads)]
    if "alexnet" in analyses.models:
        claims.append(fewer_params_check(heads, analyses.forward("alexnet").total_params, rows))
    figures = table1_checks(rows)
    example = inception_example()
    naive, bottleneck = example.naive, example.bottleneck
    section = Section("googlenet", "GoogLeNet: Table 1 and the Inception module")
    section.add(
        Paragraph(
            "Table 1 of the paper beside the computed numbers. Its params are weights only, in "
            "K = 1024; the computed weights beside them use the same K. Where a printed figure "
            "does not follow from the filter counts printed in the same row, the row's other "
            "column says which one slipped: a conv's multiply-adds are its weights × its "
            "output positions. Each printed figure is a claim in the page's tally; those that "
            "do not hold are listed in [Published against computed](#published) with their cause."
        ),
        table1(rows),
        Verdicts(tuple(c.shown() for c in claims)),
        Paragraph(
            "The lecture's example, a module on a 28×28×256 input: the naive pool branch passes "
            "all 256 input channels through, so depth can only grow from module to module; 1x1 "
            "bottlenecks cut the cost and the depth."
        ),
        inception_table(naive, bottleneck),
        inception_diagram(),
        inception_chart(naive, bottleneck),
        Verdicts(tuple(c.shown() for c in example.checks)),
    )
    ratio = naive.total_macs / bottleneck.total_macs
    ideas = (
        Idea(
            BOTTLENECKS,
            f"Inception module: {units.number(naive.total_macs / 1e6, 0)}M → "
            f"{units.number(bottleneck.total_macs / 1e6, 0)}M multiply-adds ({ratio:.1f}× less), "
            f"{naive.output_depth} → {bottleneck.output_depth} deep.",
            (example.checks[-1].id,),
            "googlenet",
        ),
        Idea(
            AUXILIARY,
            f"GoogLeNet's heads: {heads.params / 1e6:.2f}M of {heads.total / 1e6:.2f}M "
            f"parameters ({heads.params / heads.total:.0%}), unused at inference.",
            (claims[1].id,),
            "googlenet",
        ),
    )
    return Topic(section, (*claims, *figures, *example.checks), ideas)
