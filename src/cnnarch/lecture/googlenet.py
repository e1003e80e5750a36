"""GoogLeNet as the lecture and the paper present it: Table 1 computed, the Inception module's
arithmetic (naive against 1x1 bottlenecks), the auxiliary classifiers, and the paper's claims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnarch import units
from cnnarch.experiments.inception import InceptionCost, lecture_example
from cnnarch.lecture.claims import Check, difference
from cnnarch.units import explain_gap, parse_printed, signed_percent
from cnnarch.zoo.registry import create_model, published

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


def table1_rows(summary: Any, model: nn.Module | None = None) -> list[dict[str, Any]]:
    """Table 1's rows beside the computed ones: output, weights (K = 1024) and multiply-adds,
    each with its gap (computed relative to printed) and the reason for it."""
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
            "printed_params_text": params,
            "printed_params": None if params is None else parse_printed(params, k=K),
            "weights": sum(weights(model.get_submodule(p)) for p in paths) if paths else None,
            "printed_ops_text": ops,
            "printed_ops": None if ops is None else parse_printed(ops),
            "macs": sum(int(r.macs) for r in found) if found else None,
        }
        row["params_gap"] = _gap(row["weights"], row["printed_params"])
        row["ops_gap"] = _gap(row["macs"], row["printed_ops"])
        reasons = []
        for quantity, computed, printed, k in (
            ("weights", row["weights"], params, K),
            ("multiply-adds", row["macs"], ops, 1e3),
        ):
            if computed and printed is not None:
                reasons.append(f"{quantity}: {explain_gap(computed, printed, k)}")
        row["agreement"] = "; ".join(reasons) or None
        rows.append(row)
    return rows


@dataclass(frozen=True)
class AuxHeads:
    """The two training-only classifiers and the parameters with and without them."""

    params: int  # of both heads
    total: int  # every parameter of the model
    per_head: dict[str, int]

    @property
    def without(self) -> int:
        return self.total - self.params


def aux_heads(training: Any) -> AuxHeads:
    """From a training-mode summary (the heads run only in training)."""
    rows = {row.path: row for row in training.collapse(1).rows}
    per_head = {p: int(rows[p].params) for p in AUX_HEADS if p in rows}
    return AuxHeads(sum(per_head.values()), int(training.total_params), per_head)


def aux_check(summary: Any, heads: AuxHeads) -> Check:
    """The heads are extra parameters that an inference pass does not use."""
    used = int(summary.rows[0].params)
    return Check(
        "auxiliary classifiers at intermediate layers: used in training only",
        heads.params > 0 and used == heads.without,
        f"the {len(heads.per_head)} heads hold {units.number(heads.params)} of all "
        f"{units.number(heads.total)} parameters ({heads.params / heads.total:.0%}); an inference "
        f"pass uses {units.number(used)}.",
        PAPER_TEXT,
    )


def googlenet_checks(summary: Any, heads: AuxHeads, alexnet_params: int | None) -> list[Check]:
    """The paper's budget, the heads, and the lecture's '12x fewer parameters than AlexNet'."""
    macs = summary.total_macs
    checks = [
        Check(
            "a budget of 1.5 billion multiply-adds at inference",
            macs <= BUDGET_MACS,
            f"computed {macs / 1e9:.3f} G multiply-adds per 224×224 image, "
            f"{signed_percent(difference(macs, BUDGET_MACS))} relative to the 1.5 G budget"
            + (": within it." if macs <= BUDGET_MACS else ": over it."),
            PAPER_TEXT,
        ),
        aux_check(summary, heads),
    ]
    if alexnet_params is not None:
        ratio = alexnet_params / heads.without
        checks.append(
            Check(
                "12x fewer parameters than AlexNet",
                ratio >= 11.5,
                f"AlexNet {units.number(alexnet_params)} / GoogLeNet without its training-only "
                f"heads {units.number(heads.without)} = {ratio:.1f}x (with the heads: "
                f"{alexnet_params / heads.total:.1f}x). The lecture's '12x' divides 60M by 5M.",
                PAPER_TEXT,
            )
        )
    return checks


@dataclass(frozen=True)
class InceptionExample:
    naive: InceptionCost
    bottleneck: InceptionCost
    checks: tuple[Check, ...]
    reasons: dict[str, str]  # why each printed total differs from the computed one


def inception_example() -> InceptionExample:
    """The lecture's module on 28x28x256, naive and with 1x1 bottlenecks, against the slide."""
    naive, bottleneck = lecture_example(bias=False)
    example = published()["cs231n_lecture9_2017"]["inception_module_example"]
    checks, reasons = [], {}
    for label, cost in (("naive", naive), ("bottleneck", bottleneck)):
        printed = example[label]["conv_ops_as_printed"]
        why = explain_gap(cost.total_macs, printed)
        if why not in ("equal", "rounded as printed"):
            why = (
                "the slide's own per-layer products (28x28x64x1x1x256 and so on) sum to "
                f"{units.number(cost.total_macs / 1e6, 0)}M; the printed total does not follow "
                "from them"
            )
        reasons[label] = why
        depth = example[label]["output_depth"]
        gap = signed_percent(difference(cost.total_macs, parse_printed(printed)))
        checks.append(
            Check(
                f"{label}: {printed} ops, output depth {depth}",
                why == "rounded as printed" and cost.output_depth == depth,
                f"computed {units.number(cost.total_macs)} multiply-adds ({gap} relative to the "
                f"printed {printed}: {why}); output {cost.output_depth} deep.",
                SLIDES,
            )
        )
    ratio = naive.total_macs / bottleneck.total_macs
    checks.append(
        Check(
            "1x1 bottleneck layers reduce the module's cost (and keep its depth from growing)",
            ratio > 1 and bottleneck.output_depth < naive.output_depth,
            f"{units.number(bottleneck.total_macs / 1e6, 0)}M instead of "
            f"{units.number(naive.total_macs / 1e6, 0)}M multiply-adds ({ratio:.1f}x less); "
            f"output {bottleneck.output_depth} deep instead of {naive.output_depth}.",
            SLIDES,
        )
    )
    return InceptionExample(naive, bottleneck, tuple(checks), reasons)
