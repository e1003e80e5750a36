"""`cnnarch <command>`: each command is one library call plus formatting.

Mistakes a user can make end in one line on stderr and exit status 2 (see `CnnarchError`).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from cnnarch.errors import CnnarchError, CnnarchValueError, one_line

if TYPE_CHECKING:
    from cnnarch.tables import Table

# The one spelling of a batch size in every command; `--batch` is kept as an alias.
BATCH_FLAGS = ("--batch-size", "--batch")
# `cnnarch summary --format` -> the `Summary` method that writes it.
SUMMARY_FORMATS = {"table": "to_table", "md": "to_markdown", "csv": "to_csv", "json": "to_json"}
# `--format` of a command that prints one table -> the `Table` method that writes it.
TABLE_FORMATS = {"table": "to_text", "md": "to_markdown", "csv": "to_csv", "json": "to_json"}
# Column width of `cnnarch rules` in a terminal: three columns fit a 130-character line.
RULES_TEXT_WIDTH = 40
RULES_OPS_SHOWN = 8  # ops named per rule in the overview before their count
# `cnnarch plan --zero-grad` -> `zero_grad(set_to_none=...)`.
ZERO_GRAD = {"none": True, "zeros": False}
# An optional dependency -> the extra of pyproject.toml that installs it.
EXTRAS = {"matplotlib": "report"}


def _default_of(function: Callable[..., Any], parameter: str) -> Any:
    """The library's default for `parameter` of `function`, which its command shares."""
    return inspect.signature(function).parameters[parameter].default


def _add_model_arguments(p: argparse.ArgumentParser, input_help: str) -> None:
    """The model a command reads: a zoo name or a factory, its variant, one example's size."""
    from cnnarch.zoo import create_model

    p.add_argument("model", help="zoo name (see `cnnarch models`) or module.path:factory")
    p.add_argument(
        "--variant",
        default=_default_of(create_model, "variant"),
        help="zoo variant (default %(default)s)",
    )
    p.add_argument("--input", help=input_help)


def _add_models_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("models", help="list the model zoo")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--format", choices=tuple(TABLE_FORMATS), default="table")
    p.set_defaults(run=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
    from cnnarch import units
    from cnnarch.tables import Column, Table, params_column
    from cnnarch.zoo import list_models, model_card
    from cnnarch.zoo.registry import parameter_count

    names = list_models(args.pattern)
    if not names:
        raise CnnarchError(f"no model matches {args.pattern!r} (try `cnnarch models`)")
    cards = [model_card(name) for name in names]
    variants = list(dict.fromkeys(v for card in cards for v in card.variants))
    rows = [
        {
            "name": card.name,
            "family": card.family,
            "variants": "/".join(card.variants),
            # One count per variant, built on the meta device: nothing is allocated.
            **{f"params_{v}": parameter_count(card.name, v) for v in card.variants},
            "input": units.shape(card.input_size),
            "paper": str(card.paper),  # as every format prints it (JSON has no Paper type)
        }
        for card in cards
    ]
    columns = [Column("name", "name"), Column("family", "family"), Column("variants", "variants")]
    columns += [params_column(f"params_{v}", f"params, {v}") for v in variants]
    columns += [Column("input", "input"), Column("paper", "paper")]
    table = Table("models", "the model zoo", columns, rows)
    _print_table(table, args.format)
    return 0


def _print_table(table: Table, fmt: str) -> None:
    """`table` in the `--format` asked for."""
    print(getattr(table, TABLE_FORMATS[fmt])().rstrip("\n"))


def _add_rules_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "rules",
        help="the counting rules: what each aten op costs in MACs and FLOPs",
        description="The analyzer's counting rules, one table for every count it makes. MACs "
        "are counted for convolutions and matrix products only; one MAC is two FLOPs. Views "
        "cost nothing; an op without a rule costs nothing and is named in the summary "
        "(give it one with cnnarch.analysis.register_rule).",
    )
    p.add_argument(
        "pattern",
        nargs="?",
        default="*",
        help="fnmatch pattern of aten op names, e.g. 'conv*' or '*pool*': one row per op",
    )
    p.add_argument("--format", choices=tuple(TABLE_FORMATS), default="table")
    p.set_defaults(run=_cmd_rules)


def _cmd_rules(args: argparse.Namespace) -> int:
    from cnnarch.analysis.rules import describe_rules
    from cnnarch.tables import Column, Table

    rows = describe_rules(args.pattern)
    if not rows:
        raise CnnarchValueError(
            f"no op matches {args.pattern!r}; `cnnarch rules` lists every rule with its ops"
        )
    if args.format == "table":  # a terminal: long groups in brief, cells wrapped
        lines: list[dict[str, str]] = []
        for row in rows:
            ops = row["ops"].split(", ")
            if len(ops) > RULES_OPS_SHOWN:
                row = {**row, "ops": ", ".join(ops[:RULES_OPS_SHOWN]) + f", ... ({len(ops)} ops)"}
            if lines:
                lines.append({key: "" for key in row})  # a blank line between rules
            lines += _wrapped_rows(row, RULES_TEXT_WIDTH)
        rows = lines
    columns = [Column("ops", "aten ops"), Column("macs", "MACs"), Column("flops", "FLOPs")]
    table = Table("rules", "counting rules", columns, rows)
    _print_table(table, args.format)
    if args.pattern == "*" and args.format == "table":
        print("\n`cnnarch rules PATTERN` gives one row per matching op: 'conv*', '*pool*', 'add'")
    return 0


def _wrapped_rows(row: dict[str, str], width: int) -> list[dict[str, str]]:
    """`row` as lines of at most `width` characters per cell: the first line, then
    continuation rows that hold the rest of each cell."""
    import textwrap

    cells = {
        key: textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]
        for key, text in row.items()
    }
    height = max(len(lines) for lines in cells.values())
    return [
        {key: lines[i] if i < len(lines) else "" for key, lines in cells.items()}
        for i in range(height)
    ]


def _cmd_train(args: argparse.Namespace) -> int:
    import json

    from cnnarch.train import TrainingInterrupted, build_config, fit, run_summary, summary_line
    from cnnarch.train.console import log_to_terminal

    options = {
        k: v for k, v in vars(args).items() if k not in ("command", "run", "preset", "format")
    }
    config = build_config(options, preset=args.preset, new_folder=True)
    log_to_terminal()
    try:
        history = fit(config)
    except TrainingInterrupted as stop:
        _ignore_further_interrupts()
        print(f"cnnarch: {stop}", file=sys.stderr)
        return 128 + stop.signum
    if int(os.environ.get("RANK", "0")) == 0:
        if args.format == "json":
            print(json.dumps(run_summary(config, history), indent=2))
        else:
            print(summary_line(config, history))
    return 0


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    from cnnarch.data import DATASETS
    from cnnarch.data.fashion_mnist import DEFAULT_DIR as FASHION_MNIST_DIR
    from cnnarch.train.config import (
        BEST_METRICS,
        COMPILE_CHOICES,
        OPTIMIZER_DEFAULTS,
        RUNS_DIR,
        SCHEDULES,
        TRAIN_DEVICES,
        TRAIN_OPTIMIZERS,
        TRAIN_PRESETS,
        TrainConfig,
    )

    p = commands.add_parser(
        "train",
        help="train a model (use `torchrun --nproc_per_node=N -m cnnarch train ...` for DDP)",
        description="Train a zoo model or your own (module.path:factory); checkpoints each "
        "epoch, per-step and per-epoch logs, best.pt and model.pt. Flags left out come from "
        "--preset, then (with --resume) from the run's saved config, then the defaults shown.",
    )

    def option(*flags: str, help: str | None = None, **kwargs: Any) -> None:
        """A flag for a `TrainConfig` field, whose default its help shows. argparse's own
        default stays None: a flag left out must not override the preset or the resumed run."""
        action = p.add_argument(*flags, help=help, **kwargs)
        default = getattr(TrainConfig, action.dest)
        if default is not None and not isinstance(default, bool):
            shown = f"default {default}".replace("%", "%%")
            action.help = f"{help} ({shown})" if help else shown

    def per_optimizer(name: str) -> str:
        return ", ".join(f"{o} {d[name]:g}" for o, d in OPTIMIZER_DEFAULTS.items())

    p.add_argument(
        "model", nargs="?", help="zoo name (see `cnnarch models`) or module.path:factory"
    )
    option("--variant", help="zoo variant, e.g. torchvision")
    option("--dataset", help=", ".join(DATASETS))
    option("--data-dir", help=f"dataset folder (default for fashion-mnist: {FASHION_MNIST_DIR})")
    option("--epochs", type=int)
    option(*BATCH_FLAGS, type=int, metavar="N", help="global batch size")
    option("--optimizer", choices=TRAIN_OPTIMIZERS)
    option("--lr", type=float, help=f"base learning rate (default {per_optimizer('lr')})")
    option("--momentum", type=float, help="SGD's momentum")
    option("--weight-decay", type=float, help=f"default {per_optimizer('weight_decay')}")
    option("--label-smoothing", type=float, help="share of uniform targets in the loss")
    option(
        "--schedule",
        choices=SCHEDULES,
        help="step: lr/10 at 50%% and 75%% of the steps; cosine; constant",
    )
    option("--warmup-steps", type=int, help="steps at lr/10 first")
    option("--subset", type=int, help="train on N images (fixed draw)")
    option("--test-subset", type=int, help="test on N images (fixed draw)")
    option("--seed", type=int)
    option(
        "-o",
        "--out",
        help=f"run folder (default: a new {RUNS_DIR}/MODEL-UTCTIME; with --resume, the newest "
        "run of MODEL there)",
    )
    option(
        "--resume",
        action="store_true",
        default=None,
        help="continue the run in --out (or the newest run of MODEL) from its last checkpoint",
    )
    option("--amp", action="store_true", default=None, help="bfloat16 autocast")
    option(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train in NHWC (default; --no-channels-last: NCHW)",
    )
    option(
        "--compile",
        choices=COMPILE_CHOICES,
        help="torch.compile: auto compiles where the compile time pays for itself",
    )
    option("--no-compile", dest="compile", action="store_const", const="off", help="--compile off")
    option(
        "--no-augment",
        dest="augment",
        action="store_false",
        default=None,
        help="no random crops and flips",
    )
    option(
        "--image-size",
        type=int,
        help="resize batches to NxN (e.g. 224 to train alexnet or googlenet on Fashion-MNIST)",
    )
    paper = TRAIN_PRESETS["paper"](TrainConfig.model)
    p.add_argument(
        "--preset",
        choices=tuple(TRAIN_PRESETS),
        help=f"paper: He et al. 2015's CIFAR-10 recipe ({paper['epochs']} epochs, batch "
        f"{paper['batch_size']}, ...)",
    )
    option("--device", choices=TRAIN_DEVICES)
    option(
        "--threads",
        type=int,
        help="CPU threads per process (default: the fastest of 1..cores, timed at the start)",
    )
    option("--eval-batch-size", type=int, metavar="N", help="batch size of the evaluation")
    option("--checkpoint-every", type=int, help="also checkpoint every N steps, 0 for none")
    option("--best-metric", choices=BEST_METRICS, help="the epoch best.pt keeps")
    option(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="TensorBoard event files (default: when the tensorboard package is installed)",
    )
    option("--no-progress", dest="progress", action="store_false", default=None)
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="the closing summary: one line, or JSON of what was written and measured",
    )
    p.set_defaults(run=_cmd_train)


def _cmd_summary(args: argparse.Namespace) -> int:
    from cnnarch.analysis.loading import load_model, parse_size
    from cnnarch.analysis.precision import parse_dtype
    from cnnarch.zoo_models import analyze

    model = load_model(args.model, args.variant)
    size = parse_size(args.input) if args.input else None
    if args.style == "cs231n":
        if args.train or args.optimizer or args.depth is not None or args.batch_size != 1:
            raise CnnarchValueError(
                "--style cs231n shows the lecture's table of one image's forward pass; "
                "drop --train, --optimizer, --depth and --batch-size (or drop --style)"
            )
        print(_cs231n_text(model, size, args.variant, args.format))
        return 0
    if args.optimizer and not args.train:
        raise CnnarchValueError("--optimizer needs --train")
    if args.batch_size < 1:
        raise CnnarchValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.timeout >= 0:  # NaN too
        raise CnnarchValueError(
            f"--timeout must be 0 or inf (no limit) or a number of seconds, got {args.timeout}"
        )
    # What the model's own code prints goes to stderr: stdout carries the summary alone.
    with contextlib.redirect_stdout(sys.stderr):
        summary = analyze(
            model,
            size,
            batch_size=args.batch_size,
            dtype=parse_dtype(args.dtype) if args.dtype else None,
            train=args.train,
            optimizer=args.optimizer,
            variant=args.variant,
            device=args.device,
            timeout=args.timeout or None,
        )
    if args.depth is not None:
        summary = summary.collapse(args.depth)
    print(getattr(summary, SUMMARY_FORMATS[args.format])().rstrip("\n"))
    return 0


def _cs231n_text(model: object, size: object, variant: str, fmt: str) -> str:
    """The lecture's table of `model` (`cnnarch.lecture.vgg`) in one of the summary formats."""
    import json

    from cnnarch.lecture.vgg import slide_table

    table = slide_table(model, size, variant=variant)  # type: ignore[arg-type]
    if fmt == "json":
        return json.dumps(table.to_dict(), indent=2, ensure_ascii=False)
    if fmt == "csv":
        return table.as_table().to_csv().rstrip("\n")
    lines = table.total_lines() + table.notes
    lines += [f"{c.verdict}: {c.claim} ({c.source}): {c.evidence}" for c in table.checks]
    if table.layers.artifacts:
        lines.append(
            f"Not layers (steps of the implementation): {', '.join(table.layers.artifacts)}"
        )
    if fmt == "md":
        return table.as_table().to_markdown() + "\n\n" + "\n".join(f"- {x}" for x in lines)
    return table.as_table().to_text() + "\n" + "\n".join(lines)


def _add_summary_parser(commands: argparse._SubParsersAction) -> None:
    from cnnarch.analysis.analyzer import DEVICES
    from cnnarch.analysis.precision import DTYPES
    from cnnarch.analysis.training_modes import OPTIMIZERS, TrainingStep
    from cnnarch.zoo_models import analyze

    p = commands.add_parser(
        "summary",
        help="per-layer shapes, params, MACs and memory of a model (traced on meta, no compute)",
    )
    _add_model_arguments(
        p, "CxHxW of one example (default: a zoo model's card; without one, parameters only)"
    )
    p.add_argument(
        *BATCH_FLAGS,
        metavar="N",
        type=int,
        default=_default_of(analyze, "batch_size"),
        help="batch size (default %(default)s)",
    )
    p.add_argument(
        "--dtype",
        help=f"analyze as {', '.join(DTYPES)} (default: the model's dtype)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default=_default_of(analyze, "device"),
        help="meta: shapes only; cpu: real tensors; auto: meta, and CPU where an op needs data "
        "(default %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds the model's code may run (default %(default)g; 0 or inf: no limit); "
        "with a limit the pass runs in a worker thread, which a forward blocked in native "
        "code is left running in",
    )
    p.add_argument("--depth", type=int, help="show rows to this depth (0 = the model alone)")
    p.add_argument("--train", action="store_true", help="add the memory of one training step")
    p.add_argument(
        "--optimizer", choices=tuple(OPTIMIZERS), help=f"default {TrainingStep.optimizer}"
    )
    p.add_argument("--format", choices=tuple(SUMMARY_FORMATS), default="table")
    p.add_argument(
        "--style",
        choices=("cs231n",),
        help="cs231n: the lecture's VGG16 table for any model (every --format)",
    )
    p.set_defaults(run=_cmd_summary)


def _cmd_diagram(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from cnnarch.analysis.loading import load_model, parse_size
    from cnnarch.files import atomic_write_text
    from cnnarch.lecture.diagrams import model_diagram

    if args.out and not args.out.lower().endswith(".svg"):
        raise CnnarchError(f"--out {args.out!r} must name an .svg file, e.g. --out net.svg")
    drawn = model_diagram(
        load_model(args.model, args.variant),
        args.block,
        input_size=parse_size(args.input) if args.input else None,
        variant=args.variant,
        view=args.view,
    )
    path = atomic_write_text(Path(args.out), drawn.svg) if args.out else None
    if args.format == "json":  # what was drawn, and where it went
        described = {
            "model": args.model,
            "variant": args.variant,
            "block": args.block,
            "view": args.view,
            "title": drawn.title,
            "caption": drawn.caption,
            "file": str(path) if path else None,
            "bytes": len(drawn.svg.encode()),
        }
        if path is None:
            described["svg"] = drawn.svg
        print(json.dumps(described, indent=2, ensure_ascii=False))
    elif path:
        print(f"{drawn.title}: wrote {path}")
    else:
        print(drawn.svg)
    return 0


def _add_diagram_parser(commands: argparse._SubParsersAction) -> None:
    from cnnarch.lecture.diagrams import model_diagram

    p = commands.add_parser(
        "diagram",
        help="draw a model, or one of its modules, as an SVG diagram with shapes, weights, MACs",
        description="Draw the lecture's layers of a model (analyzed on meta, nothing computed) "
        "as SVG: each layer with its output shape, weights and MACs; a module that "
        "concatenates as parallel branches, one that adds as main path and shortcut.",
    )
    _add_model_arguments(p, "CxHxW of one example (default: the model's card)")
    p.add_argument(
        "--block", help="module path to draw alone, e.g. layer1.0 or inception3a (see summary)"
    )
    p.add_argument(
        "--view",
        choices=("layers", "strip"),
        default=_default_of(model_diagram, "view"),
        help="layers: the network's layers; strip: MACs and memory along the net "
        "(default %(default)s)",
    )
    p.add_argument("-o", "--out", help="write the SVG to this file (default: print it)")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: the SVG, or with --out the file written; json: what was drawn and where "
        "(the SVG itself without --out)",
    )
    p.set_defaults(run=_cmd_diagram)


def _cmd_plan(args: argparse.Namespace) -> int:
    from cnnarch.analysis.loading import load_model, parse_size
    from cnnarch.planner import plan

    options = {
        "optimizer": args.optimizer,
        "foreach": args.foreach,
        "precision": args.precision,
        "checkpoint": _checkpoint_option(args.checkpoint),
        "accumulate": args.accumulate,
        "set_to_none": ZERO_GRAD.get(args.zero_grad),
        "world_size": args.world_size,
        "sharding": args.sharding,
        "bucket_view": args.bucket_view or None,
    }
    options = {name: value for name, value in options.items() if value is not None}
    given = [name for name in options if name != "foreach"]
    if given and args.inference:
        flag = {"set_to_none": "zero-grad"}
        flags = ", ".join(f"--{flag.get(name, name).replace('_', '-')}" for name in given)
        raise CnnarchError(f"{flags}: only for training, leave out --inference")
    if args.inference:
        options = {}
    result = plan(
        load_model(args.model, args.variant),
        args.memory,
        card=args.card,
        train=not args.inference,
        batch_size=args.batch_size,
        input_size=parse_size(args.input) if args.input else None,
        variant=args.variant,
        context=args.context,
        cudnn_workspace=args.cudnn_workspace,
        reserve=args.reserve,
        margin=args.margin,
        expandable_segments=args.expandable_segments,
        max_split_size=args.max_split_size,
        allow_run=args.allow_run,
        **options,
    )
    print(result.to_json() if args.format == "json" else result.to_text())
    return 0


def _checkpoint_option(text: str | None) -> str | int | None:
    """--checkpoint stages | N."""
    if text is None or text == "stages":
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise CnnarchError(f'--checkpoint takes "stages" or a positive number of blocks, got {text!r}')


def _margin_option(text: str) -> float:
    """--margin 0.05 | 5%: the margin as a fraction of the predicted peak."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--margin takes a fraction (0.05) or a percentage (5%), got {text!r}"
        ) from None
    return value


def _add_plan_parser(commands: argparse._SubParsersAction) -> None:
    from cnnarch.analysis.training_modes import OPTIMIZERS, PRECISIONS, SHARDINGS, TrainingStep
    from cnnarch.planner import CARDS, plan
    from cnnarch.planner.device import MEASURED_ERROR, MEASURED_SHARDED_ERROR
    from cnnarch.units import percent

    step = TrainingStep  # its field defaults are the planner's, but for foreach
    p = commands.add_parser(
        "plan",
        help="the largest batch that trains on a card (traced on meta, the allocator modeled)",
    )
    _add_model_arguments(p, "CxHxW of one example (default: the model's card)")
    device = p.add_argument_group("the device (one of --card and --memory at least)")
    device.add_argument("--card", help=f"a card by name: {', '.join(CARDS)}")
    device.add_argument(
        "--memory",
        help="device memory: bytes (85198045184 or 85198045184B), GB (10^9) or GiB (2^30); "
        "torch.cuda.get_device_properties(0).total_memory tells your card's",
    )
    device.add_argument(
        "--context", help="the CUDA context's size (default: measured for the card's generation)"
    )
    device.add_argument(
        "--cudnn-workspace",
        default=_default_of(plan, "cudnn_workspace"),
        help="kept free for cuDNN workspaces (default %(default)s: PyTorch falls back to "
        "algorithms needing less)",
    )
    device.add_argument(
        "--reserve",
        default=_default_of(plan, "reserve"),
        help="more memory kept free: other processes, a display (default %(default)s)",
    )
    device.add_argument(
        "--margin",
        type=_margin_option,
        help="kept free for the prediction's error, a fraction of the peak or a percentage "
        f"(default {percent(MEASURED_ERROR, 2)}, {percent(MEASURED_SHARDED_ERROR, 2)} for "
        "ZeRO-2/3: the worst measured)".replace("%", "%%"),
    )
    device.add_argument(
        "--expandable-segments",
        action="store_true",
        help="plan for PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True",
    )
    device.add_argument("--max-split-size", help="plan for max_split_size_mb, e.g. 256MiB")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--train", action="store_true", help="plan a training step (the default)")
    mode.add_argument("--inference", action="store_true", help="plan an inference pass")
    p.add_argument(
        *BATCH_FLAGS, type=int, metavar="N", help="check this batch per optimizer step instead"
    )
    p.add_argument(
        "--allow-run",
        action="store_true",
        help="a model that needs real data may run on the CPU at any batch (else only at "
        "its two smallest, larger ones read off them)",
    )
    p.add_argument("--optimizer", help=f"{', '.join(OPTIMIZERS)} (default {step.optimizer})")
    p.add_argument(
        "--foreach",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="torch.optim's multi-tensor step, its default on CUDA (default on)",
    )
    p.add_argument(
        "--precision",
        help=f"{', '.join(PRECISIONS)} (default {step.precision}; bf16/fp16: autocast)",
    )
    p.add_argument("--checkpoint", help="activation checkpointing: stages, or N blocks a segment")
    p.add_argument(
        "--accumulate",
        type=int,
        help=f"micro-batches per optimizer step (default {step.accumulate})",
    )
    zero_grad_default = next(
        name for name, to_none in ZERO_GRAD.items() if to_none == step.set_to_none
    )
    p.add_argument(
        "--zero-grad",
        choices=tuple(ZERO_GRAD),
        help="what zero_grad leaves: none (set_to_none=True) or zeros "
        f"(default {zero_grad_default})",
    )
    p.add_argument(
        "--world-size", type=int, help=f"data-parallel ranks (DDP; default {step.world_size})"
    )
    p.add_argument(
        "--sharding",
        help=f"{', '.join(SHARDINGS)} (default {step.sharding}; zero1: optimizer state sharded; "
        "zero2: and gradients; zero3: and parameters, FSDP full shard)",
    )
    p.add_argument("--bucket-view", action="store_true", help="DDP's gradient_as_bucket_view=True")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=_cmd_plan)


def _cmd_report(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from cnnarch.files import tree_bytes
    from cnnarch.lecture.build import TERMINAL_COLUMNS, build_report
    from cnnarch.lecture.claims import tally, tally_line

    with tqdm(desc="report", unit=" steps", file=sys.stderr, leave=False, disable=None) as bar:

        def step(label: str) -> None:
            bar.set_postfix_str(label, refresh=False)
            bar.update()

        files = build_report(
            args.out, args.models, args.batch_size, degradation_results=args.degradation, step=step
        )
    if args.format == "json":
        written = {
            "out": str(files.out),
            "html": {"path": str(files.html), "bytes": files.html.stat().st_size},
            "markdown": {"path": str(files.markdown), "bytes": files.markdown.stat().st_size},
            "figures": {"folder": str(files.out / "figures"), "charts": len(files.figures)},
            "diagrams": len(files.pictures),
            "tables": {"folder": str(files.out / "tables"), "count": len(files.tables)},
            "bytes": tree_bytes(files.out),
            "seconds": round(files.seconds, 3),
            "claims": {"checked": len(files.checks), **tally(files.checks)},
        }
        print(json.dumps(written, indent=2))
        return 0
    print(files.comparison.select(TERMINAL_COLUMNS).to_text())
    print(
        f"\nWrote {files.html} and {files.markdown}, {len(files.figures)} figures (PNG + SVG) "
        f"in {files.out / 'figures'}, {len(files.tables)} tables (CSV + JSON) in "
        f"{files.out / 'tables'} ({files.seconds:.1f} s). {tally_line(files.checks)}."
    )
    return 0


def _add_report_parser(commands: argparse._SubParsersAction) -> None:
    from cnnarch.lecture.defaults import (
        DEFAULT_BATCH,
        DEFAULT_DEGRADATION_RESULTS,
        DEFAULT_MODELS,
        DEFAULT_OUT,
    )

    p = commands.add_parser(
        "report", help="the lecture as a report: HTML, Markdown, figures and tables"
    )
    p.add_argument(
        "-o", "--out", default=str(DEFAULT_OUT), help="output folder (default %(default)s/)"
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"models to include (default: {' '.join(DEFAULT_MODELS)}, and in the comparison "
        "the other networks of the lecture's chart)",
    )
    p.add_argument(
        *BATCH_FLAGS,
        metavar="N",
        type=int,
        default=DEFAULT_BATCH,
        help="batch size for training memory (default %(default)s)",
    )
    p.add_argument(
        "--degradation",
        metavar="FILE",
        help="degradation results to include; it must exist (default: "
        f"{DEFAULT_DEGRADATION_RESULTS} if it does, else the runs shipped with cnnarch)",
    )
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: the comparison and what was written; json: what was written and measured "
        "(paths, sizes, seconds, the tally), for scripts (default %(default)s)",
    )
    p.set_defaults(run=_cmd_report)


def _cmd_experiment_degradation(args: argparse.Namespace) -> int:
    import json

    from cnnarch.experiments.degradation import parse_depths, preset_settings, run_degradation
    from cnnarch.files import written_files
    from cnnarch.train.console import log_to_terminal

    depths = parse_depths(args.depths) if args.depths is not None else None
    settings = preset_settings(
        args.preset,
        dataset=args.dataset,
        data_dir=args.data_dir,
        depths=depths,
        seeds=args.seeds,
        epochs=args.epochs,
        subset=args.subset,
    )
    if args.compile is not None:
        settings = settings.with_recipe(compile=args.compile)
    log_to_terminal()
    # With --format json, stdout carries the summary alone: the lines on each run go to stderr.
    shown = contextlib.redirect_stdout(sys.stderr) if args.format == "json" else nullcontext()
    with shown:
        results = run_degradation(settings, args.out, resume=args.resume, threads=args.threads)
    if int(os.environ.get("RANK", "0")) == 0:
        effect = results["effect"]
        if args.format == "json":
            summary = {
                "out": args.out,
                "files": written_files(args.out),
                "complete": results["complete"],
                "runs": len(results["runs"]),
                "wall_seconds": results["wall_seconds"],
                "verdict": effect["verdict"] if effect else None,
                "table": results["table"],
                "images_per_s": {
                    f"{run['model']}-seed{run['seed']}": run["history"][-1]["images_per_s"]
                    for run in results["runs"]
                },
            }
            print(json.dumps(summary, indent=2))
        else:
            verdict = f"effect {effect['verdict']}; " if effect else ""
            print(f"degradation: {verdict}{results['wall_seconds']:.0f} s; files in {args.out}")
    return 0


def _add_experiment_parser(commands: argparse._SubParsersAction) -> None:
    """`cnnarch experiment NAME`: the lecture's experiments, one sub-command each."""
    from cnnarch.experiments.degradation import (
        STANDARD_EPOCHS,
        STANDARD_PLAIN_SEEDS,
        STANDARD_SEEDS,
        STANDARD_SUBSET,
    )
    from cnnarch.train.config import COMPILE_CHOICES

    p = commands.add_parser("experiment", help="run one of the lecture's experiments")
    experiments = p.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")

    d = experiments.add_parser(
        "degradation",
        help="deeper plain nets train worse, ResNets do not (He et al. 2015, Fig. 6)",
        description="Train plain and residual 6n+2 nets at each depth and seed with identical "
        "settings; write results.json, the figure (PNG, SVG) and the table (Markdown, CSV). "
        "Also runs under `torchrun --nproc_per_node=N -m cnnarch experiment degradation`.",
    )
    budget = d.add_mutually_exclusive_group()
    budget.add_argument(
        "--quick",
        dest="preset",
        action="store_const",
        const="quick",
        help="a proxy that fits 2 CPU cores in 15 minutes (default)",
    )
    budget.add_argument(
        "--standard",
        dest="preset",
        action="store_const",
        const="standard",
        help="both halves of the claim on 2 CPU cores in about 90 minutes: "
        f"{STANDARD_SUBSET} images x {STANDARD_EPOCHS} epochs, ResNets with "
        f"{STANDARD_SEEDS} seeds, plain nets with {STANDARD_PLAIN_SEEDS}",
    )
    budget.add_argument(
        "--full",
        dest="preset",
        action="store_const",
        const="full",
        help="the paper's recipe: 164 epochs, depths 20,32,44,56,110 (for a GPU)",
    )
    d.set_defaults(preset="quick")
    d.add_argument("--dataset", default="fashion-mnist", help="dataset (default fashion-mnist)")
    d.add_argument("--data-dir", help="folder holding the dataset's files")
    d.add_argument(
        "--depths", help="comma-separated 6n+2 depths (default: 20,56 quick, 20,...,110 full)"
    )
    d.add_argument(
        "--seeds",
        type=int,
        help="seeds 0..N-1 per model (default 3; standard: "
        f"{STANDARD_SEEDS}, the plain nets {STANDARD_PLAIN_SEEDS})",
    )
    d.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    d.add_argument("--subset", type=int, help="override the preset's training images")
    d.add_argument(
        "-o", "--out", default="runs/degradation", help="output folder (default runs/degradation)"
    )
    d.add_argument("--resume", action="store_true", help="continue an interrupted experiment")
    d.add_argument(
        "--threads",
        type=int,
        help="CPU threads for training (default: each run times 1..cores and takes the fastest)",
    )
    d.add_argument(
        "--compile",
        choices=COMPILE_CHOICES,
        help="torch.compile for each run (default auto: where the compile time pays for itself)",
    )
    d.add_argument(
        "--no-compile", dest="compile", action="store_const", const="off", help="train eagerly"
    )
    d.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="the closing summary: one line, or JSON of what was written and measured",
    )
    d.set_defaults(run=_cmd_experiment_degradation)


def build_parser() -> argparse.ArgumentParser:
    from cnnarch import __version__

    parser = argparse.ArgumentParser(
        prog="cnnarch", description="The CNN architectures of CS231n Lecture 9, measured."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_models_parser(commands)
    _add_train_parser(commands)
    _add_summary_parser(commands)
    _add_rules_parser(commands)
    _add_plan_parser(commands)
    _add_report_parser(commands)
    _add_diagram_parser(commands)
    _add_experiment_parser(commands)

    return parser


def _ignore_further_interrupts() -> None:
    """Once the run has stopped and said so, more Ctrl-Cs must not interrupt the exit
    handlers (torch's, tqdm's), which would print a traceback after the clean message."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()  # here, where a closed pipe is handled, not at interpreter exit
        return status
    except CnnarchError as err:
        from cnnarch.files import printable

        # One line, whatever the message carries (its lines joined, control characters shown
        # escaped); the cause stays chained for a debugger.
        print(f"cnnarch: error: {printable(one_line(str(err)))}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as err:
        extra = EXTRAS.get((err.name or "").partition(".")[0])
        if extra is None:
            raise
        print(
            f"cnnarch: error: cnnarch {args.command} needs {err.name}, which is not "
            f"installed: pip install 'cnnarch[{extra}]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        _ignore_further_interrupts()
        print("cnnarch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`cnnarch models | head`): what is left to print has no one to
        # read it. Point stdout at /dev/null so that Python's exit flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    raise SystemExit(main())
