"""The degradation experiment (He et al. 2015, Section 4.2 and Fig. 6), measured.

Deeper *plain* nets end with a higher *training* error than shallower ones — an optimization
failure, not overfitting — and residual connections remove it. `run_degradation` trains the
plain and the residual 6n+2 net (`cnnarch.zoo.cifar`, widths 16/32/64, option-A shortcuts) at
each depth with identical settings and seeds, through `cnnarch.train.fit`, and writes to `out`:

- `results.json`, the whole record (schema below; rewritten after every run, atomically);
- `degradation.png` and `degradation.svg`: the paper's figure — plain nets left, ResNets right,
  training error dashed, test error solid, mean over seeds, x = epochs;
- `table.md` and `table.csv`: final errors, mean ± sample standard deviation over seeds;
- `runs/<model>-seed<k>/`: each training run's own folder (config, metrics, checkpoint), so an
  interrupted experiment continues with `resume=True`.

`results.json` holds:

```
{"experiment": "degradation", "format": 1, "complete": bool,
 "settings": {"preset", "dataset", "depths", "seeds", "widths", "subset", "test_subset",
              "train_images", "test_images", "epochs", "steps_per_epoch", "batch_size", "lr",
              "momentum", "weight_decay", "schedule", "warmup_steps", "paper_warmup", "augment",
              "channels_last", "amp"},
 "environment": {"torch", "device", "threads", "world_size", "started_utc"},
 "wall_seconds": float,          # data loading to the end of the last run so far
 "runs": [{"model", "kind": "plain"|"residual", "depth", "seed", "seconds",
           "history": [{"epoch", "train_error", "test_error", "train_loss", "test_loss",
                        "lr", "images_per_s", "seconds", "global_step"}, ...]}, ...],
 "table": [{"model", "kind", "depth", "seeds", "train_error_mean", "train_error_std",
            "test_error_mean", "test_error_std"}, ...],
 "effect": {"shallow", "deep", "per_seed": [{"seed", "plain_gap", "residual_gap"}, ...],
            "plain_gap_mean", "residual_gap_mean", "plain_degrades_every_seed",
            "residual_no_worse_every_seed", "residual_no_worse_on_average", "verdict"}}
```

Errors are in percent. The training error is the paper's: the error on the (augmented) training
batches during the epoch. A gap is deep minus shallow final training error of one kind: the
effect is "shown" when the plain gap is positive and the residual gap is at most zero for every
seed, "shown on average" when that holds for the means only. std is null for a single seed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from cnnarch.errors import CnnarchError
from cnnarch.files import FolderLock, atomic_write_bytes, ensure_dir

WIDTHS = (16, 32, 64)
KINDS = ("plain", "residual")
PRESETS = ("quick", "full")
FULL_DEPTHS = (20, 32, 44, 56, 110)
QUICK_DEPTHS = (20, 56)
RESULTS_JSON = "results.json"
FIGURE_STEM = "degradation"
TABLE_STEM = "table"


@dataclass(frozen=True)
class DegradationSettings:
    """Everything that decides the experiment's numbers; identical for every depth and kind.

    `warmup_steps` applies to every run; `paper_warmup` instead gives the paper's 400 steps at
    lr/10 to nets of 110 layers or more (He et al. 2015, Section 4.2), and nothing to the rest.
    """

    preset: str
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    depths: tuple[int, ...] = QUICK_DEPTHS
    seeds: int = 3
    subset: int | None = None
    test_subset: int | None = None
    epochs: int = 164
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"
    warmup_steps: int = 0
    paper_warmup: bool = False
    augment: bool = True
    channels_last: bool = False
    amp: bool = False

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise CnnarchError(
                f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}"
            )
        for depth in self.depths:
            check_depth(depth)
        if len(set(self.depths)) < 2:
            raise CnnarchError(f"give at least two different depths, got {list(self.depths)}")
        if self.seeds < 1:
            raise CnnarchError(f"seeds must be at least 1, got {self.seeds}")
        if self.epochs < 1:
            raise CnnarchError(f"epochs must be at least 1, got {self.epochs}")
        if self.subset is not None and self.subset < 1:
            raise CnnarchError(f"subset must be at least 1 image, got {self.subset}")

    def warmup_for(self, depth: int) -> int:
        return 400 if self.paper_warmup and depth >= 110 else self.warmup_steps


def preset_settings(
    preset: str = "quick",
    *,
    dataset: str = "fashion-mnist",
    data_dir: str | None = None,
    depths: Sequence[int] | None = None,
    seeds: int = 3,
    epochs: int | None = None,
    subset: int | None = None,
) -> DegradationSettings:
    """The settings of a preset, with `epochs` and `subset` (training images) if given.

    "full" is the paper's recipe (batch 128, lr 0.1 divided by 10 at 50% and 75% of 164 epochs,
    momentum 0.9, weight decay 1e-4, pad-and-crop + flip, depths 20/32/44/56/110). "quick" is the
    proxy that fits 2 CPU cores in 15 minutes: the same recipe on fewer images and epochs, with
    batch 32 at the linearly scaled lr 0.025.
    """
    settings = _preset(preset, dataset, data_dir, depths, seeds)
    if epochs is not None:
        settings = replace(settings, epochs=epochs)
    if subset is not None:
        settings = replace(settings, subset=subset)
    return settings


def _preset(
    preset: str, dataset: str, data_dir: str | None, depths: Sequence[int] | None, seeds: int
) -> DegradationSettings:
    if preset == "full":
        return DegradationSettings(
            preset="full",
            dataset=dataset,
            data_dir=data_dir,
            depths=tuple(depths or FULL_DEPTHS),
            seeds=seeds,
            epochs=164,
            paper_warmup=True,
        )
    if preset == "quick":
        return DegradationSettings(
            preset="quick",
            dataset=dataset,
            data_dir=data_dir,
            depths=tuple(depths or QUICK_DEPTHS),
            seeds=seeds,
            subset=QUICK_SUBSET,
            test_subset=QUICK_TEST_SUBSET,
            epochs=QUICK_EPOCHS,
            batch_size=QUICK_BATCH_SIZE,
            lr=QUICK_LR,
        )
    raise CnnarchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")


# The quick proxy's budget, chosen by measurement on 2 CPU cores (README, degradation section):
# the paper's recipe on QUICK_SUBSET training images for QUICK_EPOCHS epochs, with batch 32 and
# lr 0.1 * 32/128 (the linear scaling rule, Goyal et al. 2017). On a CPU an image costs about the
# same at batch 32 as at 128, so the smaller batch buys four times the optimizer steps, and the
# claim under test is about what those steps achieve.
QUICK_SUBSET = 2000
QUICK_TEST_SUBSET = 1000
QUICK_EPOCHS = 6
QUICK_BATCH_SIZE = 32
QUICK_LR = 0.1 * QUICK_BATCH_SIZE / 128


def check_depth(depth: int) -> int:
    """`depth` if it is 6n+2 with n >= 1 (the family of He et al. 2015, Section 4.2)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise CnnarchError(
            f"unknown depth {depth!r}: the CIFAR nets have 6n+2 layers (8, 14, 20, 32, 44, 56, "
            "110, ...)"
        )
    return depth


def parse_depths(text: str) -> tuple[int, ...]:
    """'20,56' -> (20, 56), each a valid 6n+2 depth, sorted, at least two different ones."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        depths = sorted({int(p) for p in parts})
    except ValueError:
        raise CnnarchError(
            f"--depths must be comma-separated integers such as 20,56; got {text!r}"
        ) from None
    if len(depths) < 2:
        raise CnnarchError(
            f"--depths needs at least two different depths, e.g. 20,56; got {text!r}"
        )
    return tuple(check_depth(d) for d in depths)


def model_name(kind: str, depth: int) -> str:
    return f"{'resnet' if kind == 'residual' else 'plain'}{depth}"


# --- statistics --------------------------------------------------------------------------------


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (n - 1); the deviation is None for one value."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def final_errors(run: dict[str, Any]) -> tuple[float, float]:
    last = run["history"][-1]
    return last["train_error"], last["test_error"]


def summary_table(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model (kind, then depth): final errors, mean and std over its seeds."""
    rows = []
    keys = sorted({(r["kind"], r["depth"]) for r in runs}, key=lambda k: (KINDS.index(k[0]), k[1]))
    for kind, depth in keys:
        mine = [r for r in runs if r["kind"] == kind and r["depth"] == depth]
        train_mean, train_std = mean_std([final_errors(r)[0] for r in mine])
        test_mean, test_std = mean_std([final_errors(r)[1] for r in mine])
        rows.append(
            {
                "model": model_name(kind, depth),
                "kind": kind,
                "depth": depth,
                "seeds": len(mine),
                "train_error_mean": train_mean,
                "train_error_std": train_std,
                "test_error_mean": test_mean,
                "test_error_std": test_std,
            }
        )
    return rows


def assess_effect(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Deep minus shallow final training error per seed and kind, and whether the claim holds.

    Only seeds with all four runs (two kinds x shallowest and deepest depth) count; None if none.
    """
    depths = sorted({r["depth"] for r in runs})
    if len(depths) < 2:
        return None
    shallow, deep = depths[0], depths[-1]
    train = {(r["kind"], r["depth"], r["seed"]): final_errors(r)[0] for r in runs}
    per_seed = []
    for seed in sorted({r["seed"] for r in runs}):
        needed = [(k, d, seed) for k in KINDS for d in (shallow, deep)]
        if all(key in train for key in needed):
            per_seed.append(
                {
                    "seed": seed,
                    "plain_gap": train["plain", deep, seed] - train["plain", shallow, seed],
                    "residual_gap": train["residual", deep, seed]
                    - train["residual", shallow, seed],
                }
            )
    if not per_seed:
        return None
    plain_mean = statistics.fmean(s["plain_gap"] for s in per_seed)
    residual_mean = statistics.fmean(s["residual_gap"] for s in per_seed)
    every_plain = all(s["plain_gap"] > 0 for s in per_seed)
    every_residual = all(s["residual_gap"] <= 0 for s in per_seed)
    if every_plain and every_residual:
        verdict = "shown"
    elif plain_mean > 0 and residual_mean <= 0:
        verdict = "shown on average"
    else:
        verdict = "not shown"
    return {
        "shallow": shallow,
        "deep": deep,
        "per_seed": per_seed,
        "plain_gap_mean": plain_mean,
        "residual_gap_mean": residual_mean,
        "plain_degrades_every_seed": every_plain,
        "residual_no_worse_every_seed": every_residual,
        "residual_no_worse_on_average": residual_mean <= 0,
        "verdict": verdict,
    }


# --- files -------------------------------------------------------------------------------------


def _fmt(mean: float, std: float | None) -> str:
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def settings_line(results: dict[str, Any]) -> str:
    s = results["settings"]
    subset = "all" if s["subset"] is None else f"{s['subset']}"
    return (
        f"{s['dataset']}, {s['train_images']} training images (subset {subset}), "
        f"{s['test_images']} test images, {s['epochs']} epochs of {s['steps_per_epoch']} "
        f"steps (batch {s['batch_size']}), widths {'/'.join(map(str, s['widths']))}, "
        f"seeds {','.join(map(str, s['seeds']))}, wall time {results['wall_seconds']:.0f} s"
    )


def table_markdown(results: dict[str, Any]) -> str:
    """The final-error table with the settings it was measured under."""
    lines = [
        f"Final errors in % (mean ± std over seeds); {settings_line(results)}.",
        "",
        "| model | kind | depth | seeds | train error | test error |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for row in results["table"]:
        lines.append(
            f"| {row['model']} | {row['kind']} | {row['depth']} | {row['seeds']} | "
            f"{_fmt(row['train_error_mean'], row['train_error_std'])} | "
            f"{_fmt(row['test_error_mean'], row['test_error_std'])} |"
        )
    effect = results.get("effect")
    if effect:
        lines += [
            "",
            f"Deep minus shallow training error ({effect['deep']} vs {effect['shallow']} "
            f"layers): plain {effect['plain_gap_mean']:+.2f} points, residual "
            f"{effect['residual_gap_mean']:+.2f} points; effect {effect['verdict']}.",
        ]
    return "\n".join(lines) + "\n"


def table_csv(results: dict[str, Any]) -> str:
    buf = io.StringIO()
    fields = list(results["table"][0]) if results["table"] else ["model"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in results["table"]:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def mean_curves(
    runs: Sequence[dict[str, Any]], kind: str, depth: int
) -> tuple[list[int], list[float], list[float]]:
    """(epochs, mean training error, mean test error) over the seeds of one model."""
    mine = [r["history"] for r in runs if r["kind"] == kind and r["depth"] == depth]
    epochs = min(len(h) for h in mine)
    xs = [mine[0][i]["epoch"] for i in range(epochs)]
    train = [statistics.fmean(h[i]["train_error"] for h in mine) for i in range(epochs)]
    test = [statistics.fmean(h[i]["test_error"] for h in mine) for i in range(epochs)]
    return xs, train, test


def render_figure(results: dict[str, Any]) -> dict[str, bytes]:
    """The figure as {"png": bytes, "svg": bytes}: Fig. 6 of the paper, from `results`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    runs = results["runs"]
    depths = sorted({r["depth"] for r in runs})
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    colors = matplotlib.colormaps["viridis"]
    for ax, kind in zip(axes, KINDS, strict=True):
        for i, depth in enumerate(depths):
            if not any(r["kind"] == kind and r["depth"] == depth for r in runs):
                continue
            color = colors(0.85 * i / max(len(depths) - 1, 1))
            label = f"{'ResNet' if kind == 'residual' else 'plain'}-{depth}"
            xs, train, test = mean_curves(runs, kind, depth)
            ax.plot(xs, train, "--", color=color, linewidth=1.0)
            ax.plot(xs, test, "-", color=color, linewidth=2.0, label=label)
        ax.set_title("plain networks" if kind == "plain" else "residual networks (ResNets)")
        ax.set_xlabel(f"epoch ({results['settings']['steps_per_epoch']} iterations each)")
        ax.grid(True, alpha=0.3)
        ax.legend(title="dashed: training, solid: test", fontsize=8, title_fontsize=8)
    axes[0].set_ylabel("error (%)")
    fig.suptitle(settings_line(results), fontsize=8)
    out = {}
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150)
        out[fmt] = buf.getvalue()
    return out


def write_outputs(results: dict[str, Any], out: Path, *, figure: bool = True) -> None:
    """results.json, and (when `figure`) the figure and the tables, each written atomically."""
    ensure_dir(out)
    text = json.dumps(results, indent=1, allow_nan=False) + "\n"
    atomic_write_bytes(out / RESULTS_JSON, text.encode())
    if not figure or not results["runs"]:
        return
    atomic_write_bytes(out / f"{TABLE_STEM}.md", table_markdown(results).encode())
    atomic_write_bytes(out / f"{TABLE_STEM}.csv", table_csv(results).encode())
    for fmt, data in render_figure(results).items():
        atomic_write_bytes(out / f"{FIGURE_STEM}.{fmt}", data)


# --- running -----------------------------------------------------------------------------------


def _builder(kind: str, depth: int, in_channels: int, num_classes: int) -> Callable[[], Any]:
    from cnnarch.zoo.cifar import CifarNet

    def build() -> CifarNet:
        net = CifarNet(
            depth, residual=kind == "residual", num_classes=num_classes, in_channels=in_channels
        )
        net.model_name = model_name(kind, depth)
        return net

    return build


def _steps_per_epoch(n: int, batch_size: int) -> int:
    from cnnarch.train.trainer import steps_per_epoch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    return steps_per_epoch(n, batch_size, world)


def _run_config(
    settings: DegradationSettings,
    kind: str,
    depth: int,
    seed: int,
    out: Path | None,
    resume: bool,
    threads: int | None,
) -> Any:
    from cnnarch.train import TrainConfig

    name = model_name(kind, depth)
    return TrainConfig(
        model=name,
        dataset=settings.dataset,
        data_dir=settings.data_dir,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
        schedule=settings.schedule,
        warmup_steps=settings.warmup_for(depth),
        subset=settings.subset,
        test_subset=settings.test_subset,
        seed=seed,
        out=str(out / "runs" / f"{name}-seed{seed}") if out else None,
        resume=resume and out is not None,
        augment=settings.augment,
        channels_last=settings.channels_last,
        amp=settings.amp,
        threads=threads,
        progress=False,
    )


def run_degradation(
    settings: DegradationSettings,
    out: str | Path | None = "runs/degradation",
    *,
    resume: bool = False,
    progress: bool = True,
    data: tuple[Any, Any] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train plain and residual nets at every depth and seed; return (and write) the results.

    `data` (train, test) `ImageDataset`s replace loading `settings.dataset`. `threads` sets
    torch's CPU threads during training (None: torch's default, one per core; on a machine
    that others load too, 1 can be several times faster, as busy cores stall threads that
    wait for each other). Under `torchrun` every run is data-parallel and only rank 0 writes
    files and shows progress.
    """
    from cnnarch.data import load_dataset
    from cnnarch.train import fit
    from cnnarch.train.distributed import DistContext

    started = time.perf_counter()
    started_utc = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out_path = Path(out) if out is not None else None
    dist = DistContext.from_env()
    device = torch.device(f"cuda:{dist.local_rank}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    lock = FolderLock(out_path, "degradation experiment") if out_path and dist.is_main else None
    if lock is not None:
        lock.acquire()  # before any work: an unusable or busy --out fails at once
        if lock.stale_note:
            print(f"cnnarch: warning: {lock.stale_note}", file=sys.stderr)
    created_group = False
    try:
        created_group = dist.init(device)  # one process group for all runs, not one per run
        if data is None:
            data = (
                load_dataset(settings.dataset, settings.data_dir, train=True),
                load_dataset(settings.dataset, settings.data_dir, train=False),
            )
        # A preset's image counts are upper bounds: a smaller data set is used whole.
        train_n = min(settings.subset or len(data[0]), len(data[0]))
        test_n = min(settings.test_subset or len(data[1]), len(data[1]))
        clamped = (settings.subset or 0) > train_n or (settings.test_subset or 0) > test_n
        if dist.is_main and clamped:
            print(
                f"cnnarch: note: the data holds {len(data[0])} training and {len(data[1])} "
                f"test images; using {train_n} and {test_n}",
                file=sys.stderr,
            )
        run_settings = replace(
            settings,
            subset=train_n if train_n < len(data[0]) else None,
            test_subset=test_n if test_n < len(data[1]) else None,
        )
        steps = _steps_per_epoch(train_n, settings.batch_size)
        seeds = list(range(settings.seeds))
        plan = [
            (seed, kind, depth) for seed in seeds for kind in KINDS for depth in settings.depths
        ]
        results: dict[str, Any] = {
            "experiment": "degradation",
            "format": 1,
            "complete": False,
            "settings": {
                **{k: v for k, v in asdict(settings).items() if k not in ("data_dir", "seeds")},
                "depths": list(settings.depths),
                "seeds": seeds,
                "widths": list(WIDTHS),
                "train_images": train_n,
                "test_images": test_n,
                "steps_per_epoch": steps,
            },
            "environment": {
                "torch": torch.__version__,
                "device": str(device),
                "threads": threads or torch.get_num_threads(),
                "world_size": dist.world_size,
                "started_utc": started_utc,
            },
            "wall_seconds": 0.0,
            "runs": [],
            "table": [],
            "effect": None,
        }
        writer = out_path if dist.is_main else None
        bar = tqdm(
            total=len(plan) * settings.epochs * steps,
            unit="step",
            disable=not (progress and dist.is_main),
            dynamic_ncols=True,
            mininterval=1.0,
        )
        try:
            for i, (seed, kind, depth) in enumerate(plan):
                name = model_name(kind, depth)
                bar.set_description(f"run {i + 1}/{len(plan)} {name} seed {seed}")
                done_before = bar.n
                cfg = _run_config(run_settings, kind, depth, seed, out_path, resume, threads)
                t0 = time.perf_counter()
                history = fit(
                    cfg,
                    _builder(kind, depth, data[0].in_channels, data[0].num_classes),
                    on_step=lambda info, base=done_before: bar.update(
                        base + info.global_step - bar.n
                    ),
                    data=data,
                )
                seconds = time.perf_counter() - t0
                run = {
                    "model": name,
                    "kind": kind,
                    "depth": depth,
                    "seed": seed,
                    "seconds": seconds,
                    "history": history,
                }
                results["runs"].append(run)
                train_err, test_err = final_errors(run)
                bar.write(
                    f"{name:>10s} seed {seed}: train error {train_err:6.2f}%  "
                    f"test error {test_err:6.2f}%  ({seconds:.0f} s)"
                )
                bar.update(done_before + settings.epochs * steps - bar.n)
                _update(results, started)
                if writer is not None:
                    write_outputs(results, writer, figure=False)
        finally:
            bar.close()
        results["complete"] = True
        _update(results, started)
        if writer is not None:
            write_outputs(results, writer)
        return results
    finally:
        if created_group:
            torch.distributed.destroy_process_group()
        if lock is not None:
            lock.release()


def _update(results: dict[str, Any], started: float) -> None:
    results["table"] = summary_table(results["runs"])
    results["effect"] = assess_effect(results["runs"])
    results["wall_seconds"] = time.perf_counter() - started


def load_results(path: str | Path) -> dict[str, Any]:
    """A results.json written by `run_degradation` (a folder holding one, or the file)."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    try:
        results = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as err:
        raise CnnarchError(f"cannot read degradation results {path}: {err}") from None
    if results.get("experiment") != "degradation":
        raise CnnarchError(f"{path} is not a degradation results file")
    return results
