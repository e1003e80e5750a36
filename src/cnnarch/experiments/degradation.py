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

`results.json` is a `Results` (the typed dicts below say what each part holds, and
`load_results` checks a file against them field by field).

Errors are in percent. The training error is the paper's: the error on the (augmented) training
batches during the epoch. A gap is deep minus shallow final training error of one kind: the
effect is "shown" when the plain gap is positive and the residual gap is at most zero for every
seed each kind ran, "shown on average" when that holds for the means only, and "not judged"
when a net of the pair did not learn (its final training error is not clearly below chance:
`learned`). std is null for a single seed.

How sure a gap is: `gap_estimate` gives its spread across seeds and the sampling error of an
error rate measured on the training images (`sampling_error`); a gap smaller than twice the
larger of the two is within noise.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import textwrap
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from tqdm import tqdm

from cnnarch.errors import CnnarchError
from cnnarch.experiments.schema import SchemaError, check, read_json
from cnnarch.files import (
    FolderLock,
    atomic_write_bytes,
    check_output_folder,
    ensure_dir,
    record_output,
)
from cnnarch.tables import Column, Table
from cnnarch.train.config import TrainConfig
from cnnarch.units import mean_with_std, number
from cnnarch.zoo.cifar import WIDTHS, CifarNet, check_depth

if TYPE_CHECKING:
    from cnnarch.train import StepInfo

KINDS = ("plain", "residual")
PRESETS = ("quick", "standard", "full")
FULL_DEPTHS = (20, 32, 44, 56, 110)
CPU_DEPTHS = (20, 56)
RESULTS_JSON = "results.json"
RESULT_KEYS = ("complete", "settings", "environment", "wall_seconds", "runs", "table", "effect")
FIGURE_STEM = "degradation"
TABLE_STEM = "table"


class _EpochErrors(TypedDict):
    epoch: int
    train_error: float  # percent
    test_error: float  # percent


class Epoch(_EpochErrors, total=False):
    """One epoch of a run's history, as the trainer records it."""

    train_loss: float
    test_loss: float
    lr: float
    images_per_s: float
    seconds: float
    global_step: int
    threads: int | None


class _RunRecord(TypedDict):
    model: str
    kind: str  # "plain" or "residual"
    depth: int
    seed: int
    seconds: float
    history: list[Epoch]


class Run(_RunRecord, total=False):
    """One training run: its model, its seed and the trainer's history, one `Epoch` each."""

    threads: int | None  # CPU threads the run trained with


class TableRow(TypedDict):
    """One model's final errors over its seeds: mean, and sample std (None for one seed)."""

    model: str
    kind: str
    depth: int
    seeds: int
    train_error_mean: float
    train_error_std: float | None
    test_error_mean: float
    test_error_std: float | None


class SeedGap(TypedDict):
    """Deep minus shallow final training error at one seed; None for a kind that did not
    run with that seed."""

    seed: int
    plain_gap: float | None
    residual_gap: float | None


class Effect(TypedDict):
    """The claim judged: "shown", "shown on average" or "not shown" (`assess_effect`)."""

    shallow: int
    deep: int
    per_seed: list[SeedGap]
    plain_gap_mean: float
    residual_gap_mean: float
    plain_degrades_every_seed: bool
    residual_no_worse_every_seed: bool
    residual_no_worse_on_average: bool
    verdict: str


class _SettingsRecord(TypedDict):
    preset: str
    dataset: str
    depths: list[int]
    subset: int | None
    epochs: int
    batch_size: int
    seeds: list[int]
    widths: list[int]
    train_images: int
    test_images: int
    steps_per_epoch: int


class RecordedSettings(_SettingsRecord, total=False):
    """`DegradationSettings.to_dict()` and what the data gave: train_images, test_images,
    steps_per_epoch and classes (files written before classes was recorded have none)."""

    test_subset: int | None
    lr: float
    momentum: float
    weight_decay: float
    schedule: str
    warmup_steps: int
    paper_warmup: bool
    augment: bool
    channels_last: bool
    amp: bool
    plain_seeds: list[int]
    classes: int


class Environment(TypedDict, total=False):
    """torch, device, threads (the count given, or None: measured per run), world_size,
    started_utc and compile (the trainer's torch.compile setting: "on", "off" or "auto")."""

    torch: str
    device: str
    threads: int | None
    world_size: int
    started_utc: str
    compile: str


class Results(TypedDict):
    """results.json. `wall_seconds` runs from data loading to the end of the last run so far."""

    experiment: str  # "degradation"
    format: int  # 1
    complete: bool
    settings: RecordedSettings
    environment: Environment
    wall_seconds: float
    runs: list[Run]
    table: list[TableRow]
    effect: Effect | None


def paper_recipe(**changes: Any) -> TrainConfig:
    """He et al. 2015's CIFAR-10 recipe (Section 4.2) as a `TrainConfig`: batch 128, lr 0.1
    divided by 10 at 50% and 75% of 164 epochs, momentum 0.9, weight decay 1e-4, pad-and-crop
    and flip; `changes` replace fields. The trainer's defaults are that recipe but for the
    epochs, and but for the layout: the shipped results were trained in NCHW, and the presets
    keep it so that a new run repeats them (the trainer's default, channels_last, runs the
    steps faster)."""
    return replace(TrainConfig(epochs=164, progress=False, channels_last=False), **changes)


@dataclass(frozen=True)
class DegradationSettings:
    """The experiment: a plain and a residual net at each of `depths`, each trained with each
    seed from one `recipe`, so that the kinds and depths differ in nothing else.

    A run's `TrainConfig` is the recipe with the run's model, seed and folder set, and its
    warmup: `recipe.warmup_steps` for every run, or, with `paper_warmup`, the paper's 400 steps
    at lr/10 for nets of 110 layers or more (He et al. 2015, Section 4.2) and none for the rest.
    `plain_seeds` (None: all `seeds`) runs the plain nets with only the first that many seeds.
    """

    preset: str
    recipe: TrainConfig = field(default_factory=paper_recipe)
    depths: tuple[int, ...] = CPU_DEPTHS
    seeds: int = 3
    plain_seeds: int | None = None
    paper_warmup: bool = False

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
        if self.plain_seeds is not None and not 1 <= self.plain_seeds <= self.seeds:
            raise CnnarchError(
                f"plain_seeds must be between 1 and seeds ({self.seeds}), got {self.plain_seeds}"
            )
        self.recipe.validate()

    def warmup_for(self, depth: int) -> int:
        return 400 if self.paper_warmup and depth >= 110 else self.recipe.warmup_steps

    def seeds_of(self, kind: str) -> list[int]:
        """The seeds `kind` runs with: all of them, or the first `plain_seeds` for plain nets
        (the plain half is decided by a wide margin at every seed; the residual half is not)."""
        count = self.plain_seeds if kind == "plain" and self.plain_seeds else self.seeds
        return list(range(count))

    def with_recipe(self, **changes: Any) -> DegradationSettings:
        """The same experiment with recipe fields replaced: `.with_recipe(batch_size=128)`."""
        return replace(self, recipe=replace(self.recipe, **changes))

    def run_config(self, kind: str, depth: int, seed: int, **changes: Any) -> TrainConfig:
        """The `TrainConfig` of one run: the recipe with this run's model, seed and warmup,
        and `changes` (where it writes, threads, ...)."""
        return replace(
            self.recipe,
            model=model_name(kind, depth),
            seed=seed,
            warmup_steps=self.warmup_for(depth),
            **changes,
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings as results.json records them (before the data is known)."""
        r = self.recipe
        return {
            "preset": self.preset,
            "dataset": r.dataset,
            "depths": list(self.depths),
            "subset": r.subset,
            "test_subset": r.test_subset,
            "epochs": r.epochs,
            "batch_size": r.batch_size,
            "lr": r.lr,
            "momentum": r.momentum,
            "weight_decay": r.weight_decay,
            "schedule": r.schedule,
            "warmup_steps": r.warmup_steps,
            "paper_warmup": self.paper_warmup,
            "augment": r.augment,
            "channels_last": r.channels_last,
            "amp": r.amp,
            "seeds": self.seeds_of("residual"),
            **({"plain_seeds": self.seeds_of("plain")} if self.plain_seeds else {}),
            "widths": list(WIDTHS),
        }


def preset_settings(
    preset: str = "quick",
    *,
    dataset: str = "fashion-mnist",
    data_dir: str | None = None,
    depths: Sequence[int] | None = None,
    seeds: int | None = None,
    epochs: int | None = None,
    subset: int | None = None,
) -> DegradationSettings:
    """The settings of a preset, with `depths`, `seeds`, `epochs` and `subset` (training
    images) replaced where given.

    "full" is the paper's recipe (`paper_recipe`) at depths 20/32/44/56/110, for a GPU.
    "quick" (15 minutes on 2 CPU cores) and "standard" (about 90) are the same recipe on fewer
    images and epochs, with batch 32 at the linearly scaled lr 0.025; "standard" runs the
    residual nets with STANDARD_SEEDS seeds and the plain nets with one (`seeds` sets the first;
    the plain count never exceeds it).
    """
    if preset not in PRESETS:
        raise CnnarchError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    data = {"dataset": dataset, "data_dir": data_dir}
    if preset == "full":
        settings = DegradationSettings(
            preset, paper_recipe(**data), depths=FULL_DEPTHS, seeds=3, paper_warmup=True
        )
    else:
        cpu = {"batch_size": CPU_BATCH_SIZE, "lr": CPU_LR, "test_subset": CPU_TEST_SUBSET}
        if preset == "quick":
            recipe = paper_recipe(**data, **cpu, subset=QUICK_SUBSET, epochs=QUICK_EPOCHS)
            settings = DegradationSettings(preset, recipe, seeds=3)
        else:
            recipe = paper_recipe(**data, **cpu, subset=STANDARD_SUBSET, epochs=STANDARD_EPOCHS)
            settings = DegradationSettings(
                preset, recipe, seeds=STANDARD_SEEDS, plain_seeds=STANDARD_PLAIN_SEEDS
            )
    if depths is not None:
        settings = replace(settings, depths=tuple(depths))
    if seeds is not None:
        plain = min(settings.plain_seeds, seeds) if settings.plain_seeds else None
        settings = replace(settings, seeds=seeds, plain_seeds=plain)
    if epochs is not None:
        settings = settings.with_recipe(epochs=epochs)
    if subset is not None:
        settings = settings.with_recipe(subset=subset)
    return settings


# The CPU presets' budgets, chosen by measurement on 2 CPU cores (docs/degradation.md):
# the paper's recipe on a subset of the training images for a few epochs, with batch 32 and
# lr 0.1 * 32/128 (the linear scaling rule, Goyal et al. 2017). On a CPU an image costs about the
# same at batch 32 as at 128, so the smaller batch buys four times the optimizer steps, and the
# claim under test is about what those steps achieve.
CPU_BATCH_SIZE = 32
CPU_LR = 0.1 * CPU_BATCH_SIZE / 128
CPU_TEST_SUBSET = 1000
QUICK_SUBSET = 2000
QUICK_EPOCHS = 6
# "standard": pilot runs of ResNet-20 against ResNet-56 at growing budgets found the deeper
# ResNet ahead from STANDARD_EPOCHS epochs of STANDARD_SUBSET images (docs/degradation.md's
# table of budgets).
STANDARD_SUBSET = 5_000
STANDARD_EPOCHS = 48
STANDARD_SEEDS = 2
STANDARD_PLAIN_SEEDS = 1


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


def final_errors(run: Run) -> tuple[float, float]:
    last = run["history"][-1]
    return last["train_error"], last["test_error"]


def summary_table(runs: Sequence[Run]) -> list[TableRow]:
    """One row per model (kind, then depth): final errors, mean and std over its seeds."""
    rows = []
    keys = sorted({(r["kind"], r["depth"]) for r in runs}, key=lambda k: (KINDS.index(k[0]), k[1]))
    for kind, depth in keys:
        mine = [r for r in runs if r["kind"] == kind and r["depth"] == depth]
        train_mean, train_std = mean_std([final_errors(r)[0] for r in mine])
        test_mean, test_std = mean_std([final_errors(r)[1] for r in mine])
        rows.append(
            TableRow(
                model=model_name(kind, depth),
                kind=kind,
                depth=depth,
                seeds=len(mine),
                train_error_mean=train_mean,
                train_error_std=train_std,
                test_error_mean=test_mean,
                test_error_std=test_std,
            )
        )
    return rows


# Classes of the data sets results.json may name, for files that do not record them.
DATASET_CLASSES = {"fashion-mnist": 10, "cifar10": 10}


def sampling_error(error: float, images: int) -> float:
    """The standard error, in points, of an error rate of `error` percent measured once on
    `images` images: sqrt(p (1 - p) / n), the binomial sampling error.

    Args:
        error: the error rate in percent.
        images: how many images it was measured on.
    """
    p = min(max(error / 100, 0.0), 1.0)
    return 100 * math.sqrt(p * (1 - p) / images)


def chance_error(classes: int) -> float:
    """The error rate, in percent, of guessing among `classes` classes."""
    return 100 * (1 - 1 / classes)


def learned(error: float, images: int, classes: int) -> bool:
    """Whether a final training error is clearly below chance: more than two sampling errors
    of a chance-level error rate on `images` images (128 images, 10 classes: below 84.7%).

    Args:
        error: the final training error in percent.
        images: the training images it was measured on.
        classes: the number of classes (chance is 1 - 1/classes).
    """
    chance = chance_error(classes)
    return error < chance - 2 * sampling_error(chance, images)


def classes_of(settings: RecordedSettings) -> int | None:
    """The number of classes the runs were trained on: recorded, or known from the data set."""
    return settings.get("classes") or DATASET_CLASSES.get(settings["dataset"])


def not_learned(runs: Sequence[Run], images: int, classes: int) -> list[Run]:
    """The runs whose final training error is not clearly below chance (`learned`)."""
    return [r for r in runs if not learned(final_errors(r)[0], images, classes)]


def assess_effect(
    runs: Sequence[Run], *, train_images: int | None = None, classes: int | None = None
) -> Effect | None:
    """Deep minus shallow final training error per seed and kind, and whether the claim holds.

    A kind's gap at a seed counts when that kind ran at the shallowest and the deepest depth
    with that seed (the plain nets may run with fewer seeds: their gap is then None at the
    others). None until both kinds have at least one gap. With `train_images` and `classes`,
    a pair of which a net did not learn (`learned`) makes the verdict "not judged".

    Args:
        runs: the runs so far.
        train_images: the training images each epoch's error was measured on.
        classes: the number of classes.
    """
    depths = sorted({r["depth"] for r in runs})
    if len(depths) < 2:
        return None
    shallow, deep = depths[0], depths[-1]
    train = {(r["kind"], r["depth"], r["seed"]): final_errors(r)[0] for r in runs}

    def gap(kind: str, seed: int) -> float | None:
        if (kind, deep, seed) in train and (kind, shallow, seed) in train:
            return train[kind, deep, seed] - train[kind, shallow, seed]
        return None

    per_seed = [
        SeedGap(seed=seed, plain_gap=gap("plain", seed), residual_gap=gap("residual", seed))
        for seed in sorted({r["seed"] for r in runs})
    ]
    per_seed = [s for s in per_seed if s["plain_gap"] is not None or s["residual_gap"] is not None]
    plain = [s["plain_gap"] for s in per_seed if s["plain_gap"] is not None]
    residual = [s["residual_gap"] for s in per_seed if s["residual_gap"] is not None]
    if not plain or not residual:
        return None
    plain_mean, residual_mean = statistics.fmean(plain), statistics.fmean(residual)
    every_plain = all(g > 0 for g in plain)
    every_residual = all(g <= 0 for g in residual)
    pairs = [r for r in runs if r["depth"] in (shallow, deep)]
    failed = not_learned(pairs, train_images, classes) if train_images and classes else []
    if failed:
        worst = max(failed, key=lambda r: final_errors(r)[0])
        verdict = (
            f"not judged: {model_name(worst['kind'], worst['depth'])} (seed {worst['seed']}) "
            "did not learn, final "
            f"training error {final_errors(worst)[0]:.1f}% against chance "
            f"{chance_error(classes or 1):.1f}% on {train_images} images"
        )
    elif every_plain and every_residual:
        verdict = "shown"
    elif plain_mean > 0 and residual_mean <= 0:
        verdict = "shown on average"
    else:
        verdict = "not shown"
    return Effect(
        shallow=shallow,
        deep=deep,
        per_seed=per_seed,
        plain_gap_mean=plain_mean,
        residual_gap_mean=residual_mean,
        plain_degrades_every_seed=every_plain,
        residual_no_worse_every_seed=every_residual,
        residual_no_worse_on_average=residual_mean <= 0,
        verdict=verdict,
    )


@dataclass(frozen=True)
class GapEstimate:
    """Deep minus shallow final training error of one kind, with how sure it is.

    `seed_error` is the standard error of the mean gap from its spread across seeds (sample
    std / sqrt(seeds); None for one seed); `sampling_error` that of an error rate measured on
    the training images, for the mean gap; `uncertainty` the larger of the two. A gap within
    `NOISE_FACTOR` uncertainties of zero is within noise.
    """

    kind: str
    shallow: int
    deep: int
    gaps: tuple[float, ...]  # one per seed
    seed_error: float | None
    sampling_error: float
    images: int

    @property
    def mean(self) -> float:
        return statistics.fmean(self.gaps)

    @property
    def uncertainty(self) -> float:
        return max(self.seed_error or 0.0, self.sampling_error)

    @property
    def within_noise(self) -> bool:
        return abs(self.mean) <= NOISE_FACTOR * self.uncertainty

    def described(self) -> str:
        """'+11.84 points (1 seed: no seed spread; sampling error ±0.67 on 5,000 images)'."""
        seeds = len(self.gaps)
        listed = ", ".join(f"{g:+.2f}" for g in self.gaps)
        spread = (
            f"seed spread ±{self.seed_error:.2f}"
            if self.seed_error is not None
            else "one seed: no seed spread"
        )
        return (
            f"{self.mean:+.2f} points ({seeds} seed{'s' if seeds != 1 else ''}: {listed}; "
            f"{spread}, sampling error ±{self.sampling_error:.2f} on {number(self.images)} "
            "images)"
        )


NOISE_FACTOR = 2.0  # a gap within two uncertainties of zero is within noise (about 95%)


def gap_estimate(results: Results, kind: str) -> GapEstimate | None:
    """`kind`'s gap (deepest minus shallowest depth) in `results`, with its uncertainty; None
    if it did not run at both depths with a common seed.

    Args:
        results: the experiment's results.
        kind: "plain" or "residual".
    """
    runs = [r for r in results["runs"] if r["kind"] == kind]
    depths = sorted({r["depth"] for r in results["runs"]})
    if len(depths) < 2:
        return None
    shallow, deep = depths[0], depths[-1]
    final = {(r["depth"], r["seed"]): final_errors(r)[0] for r in runs}
    seeds = sorted(seed for depth, seed in final if depth == deep and (shallow, seed) in final)
    if not seeds:
        return None
    gaps = tuple(final[deep, seed] - final[shallow, seed] for seed in seeds)
    images = results["settings"]["train_images"]
    # Each gap is the difference of two error rates, each measured once on `images` images.
    per_gap = [
        math.hypot(
            sampling_error(final[deep, seed], images), sampling_error(final[shallow, seed], images)
        )
        for seed in seeds
    ]
    sampling = math.sqrt(sum(e * e for e in per_gap)) / len(seeds)
    seed_error = statistics.stdev(gaps) / math.sqrt(len(gaps)) if len(gaps) > 1 else None
    return GapEstimate(kind, shallow, deep, gaps, seed_error, sampling, images)


# --- files -------------------------------------------------------------------------------------


def seeds_text(settings: RecordedSettings) -> str:
    """'seeds 0,1,2', or per kind where the plain nets ran fewer: 'residual seeds 0,1, plain
    seed 0'."""

    def listed(seeds: list[int]) -> str:
        return f"seed{'s' if len(seeds) != 1 else ''} {','.join(map(str, seeds))}"

    plain = settings.get("plain_seeds")
    if plain is None or plain == settings["seeds"]:
        return listed(settings["seeds"])
    return f"residual {listed(settings['seeds'])}, plain {listed(plain)}"


def images_text(settings: RecordedSettings) -> str:
    """'5,000 training images (a subset)' or '60,000 training images (all)'."""
    subset = settings["subset"]
    whole = subset is None or subset > settings["train_images"]
    return f"{number(settings['train_images'])} training images ({'all' if whole else 'a subset'})"


def describe_run(results: Results) -> str:
    """A run in words, from its own settings: 'a 1 h 16 min run of `--standard`: 5,000
    training images (a subset), 48 epochs of 157 steps at batch 32, depths 20 and 56,
    residual seeds 0,1, plain seed 0'."""
    s = results["settings"]
    depths = [str(d) for d in s["depths"]]
    shown = ", ".join(depths[:-1]) + f" and {depths[-1]}" if len(depths) > 1 else depths[0]
    state = "" if results["complete"] else f", incomplete ({len(results['runs'])} runs so far)"
    return (
        f"a {duration(results['wall_seconds'])} run of `--{s['preset']}`: {images_text(s)}, "
        f"{s['epochs']} epoch{'s' if s['epochs'] != 1 else ''} of {s['steps_per_epoch']} steps at "
        f"batch {s['batch_size']}, depths {shown}, {seeds_text(s)}{state}"
    )


def training_steps(results: Results) -> int:
    """Optimizer steps each run of `results` trains for: how long its runs are."""
    return results["settings"]["epochs"] * results["settings"]["steps_per_epoch"]


def settings_line(results: Results) -> str:
    s = results["settings"]
    return (
        f"{s['dataset']}, {images_text(s)}, {number(s['test_images'])} test images, "
        f"{s['epochs']} epochs of {s['steps_per_epoch']} steps (batch {s['batch_size']}), "
        f"widths {'/'.join(map(str, s['widths']))}, {seeds_text(s)}, "
        f"wall time {results['wall_seconds']:.0f} s"
    )


def table_markdown(results: Results) -> str:
    """The final-error table with the settings it was measured under."""
    rows = [
        {
            **row,
            "train": mean_with_std(row["train_error_mean"], row["train_error_std"]),
            "test": mean_with_std(row["test_error_mean"], row["test_error_std"]),
        }
        for row in results["table"]
    ]
    columns = [Column(key, key) for key in ("model", "kind", "depth", "seeds")]
    columns += [Column("train", "train error"), Column("test", "test error")]
    lines = [
        f"Final errors in % (mean ± std over seeds); {settings_line(results)}.",
        "",
        Table(TABLE_STEM, "final errors", columns, rows).to_markdown(),
    ]
    effect = results.get("effect")
    if effect:
        lines += [
            "",
            f"Deep minus shallow training error ({effect['deep']} vs {effect['shallow']} "
            f"layers): plain {effect['plain_gap_mean']:+.2f} points, residual "
            f"{effect['residual_gap_mean']:+.2f} points; effect {effect['verdict']}.",
        ]
    return "\n".join(lines) + "\n"


def table_csv(results: Results) -> str:
    """The final-error table's rows as stored in results.json, one column per field."""
    fields = list(results["table"][0]) if results["table"] else ["model"]
    columns = [Column(key, key) for key in fields]
    return Table(TABLE_STEM, "final errors", columns, results["table"]).to_csv()


def mean_curves(
    runs: Sequence[Run], kind: str, depth: int
) -> tuple[list[int], list[float], list[float]]:
    """(epochs, mean training error, mean test error) over the seeds of one model."""
    mine = [r["history"] for r in runs if r["kind"] == kind and r["depth"] == depth]
    epochs = min(len(h) for h in mine)
    xs = [mine[0][i]["epoch"] for i in range(epochs)]
    train = [statistics.fmean(h[i]["train_error"] for h in mine) for i in range(epochs)]
    test = [statistics.fmean(h[i]["test_error"] for h in mine) for i in range(epochs)]
    return xs, train, test


def curves_figure(results: Results, *, settings: bool = True) -> dict[str, bytes]:
    """The figure as {"png": bytes, "svg": bytes}: Fig. 6 of the paper, from `results`.

    Args:
        results: the experiment's results.
        settings: write the run's settings above the panels (a figure on its own needs them;
            the report says them in its text).
    """
    import matplotlib

    from cnnarch.report.charts import chart_style, figure_bytes, new_figure

    runs = results["runs"]
    depths = sorted({r["depth"] for r in runs})
    colors = matplotlib.colormaps["viridis"]
    with chart_style():
        fig, axes = new_figure(height=4.2, ncols=2, sharey=True)
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
        if settings:
            fig.suptitle(textwrap.fill(settings_line(results), 130), fontsize=8)
        return figure_bytes(fig, dpi=150)  # two dense panels: finer than the report's other charts


def write_outputs(results: Results, out: Path, *, figure: bool = True) -> None:
    """results.json, and (when `figure`) the figure and the tables, each written atomically."""
    ensure_dir(out)
    text = json.dumps(results, indent=1, allow_nan=False) + "\n"
    atomic_write_bytes(out / RESULTS_JSON, text.encode())
    if not figure or not results["runs"]:
        return
    atomic_write_bytes(out / f"{TABLE_STEM}.md", table_markdown(results).encode())
    atomic_write_bytes(out / f"{TABLE_STEM}.csv", table_csv(results).encode())
    for fmt, data in curves_figure(results).items():
        atomic_write_bytes(out / f"{FIGURE_STEM}.{fmt}", data)


# --- running -----------------------------------------------------------------------------------


def _builder(kind: str, depth: int, in_channels: int, num_classes: int) -> Callable[[], Any]:
    def build() -> CifarNet:
        net = CifarNet(
            depth, residual=kind == "residual", num_classes=num_classes, in_channels=in_channels
        )
        net.model_name = model_name(kind, depth)
        return net

    return build


class ExperimentEta:
    """Seconds left in an experiment, from the step rates its runs have shown so far.

    A model's rate is the wall time of its runs in this process (setup, thread choice and
    evaluation included, so the estimate covers them too) over the steps they trained. A model
    not yet measured gets the rate per layer of all measured ones times its depth: the work per
    image of a 6n+2 net grows about linearly with its depth.
    """

    def __init__(self) -> None:
        self.measured: dict[tuple[str, int], tuple[int, float]] = {}  # (kind, depth): steps, s

    def record(self, kind: str, depth: int, steps: int, seconds: float) -> None:
        """Add `steps` trained by a run of (kind, depth) in `seconds` (runs resumed as already
        finished train no steps and add nothing)."""
        if steps > 0:
            done, spent = self.measured.get((kind, depth), (0, 0.0))
            self.measured[kind, depth] = (done + steps, spent + seconds)

    def seconds_left(
        self,
        todo: Sequence[tuple[str, int, int]],
        current: tuple[str, int, int, float] | None = None,
    ) -> float | None:
        """Estimated seconds for the (kind, depth, steps) still `todo`; None before any step.

        `current` (kind, depth, steps, seconds) is the progress of the run under way, which
        counts as measured too.
        """
        measured = dict(self.measured)
        if current is not None and current[2] > 0:
            done, spent = measured.get(current[:2], (0, 0.0))
            measured[current[:2]] = (done + current[2], spent + current[3])
        if not measured:
            return None
        per_layer_step = sum(s for _, s in measured.values()) / sum(
            steps * depth for (_, depth), (steps, _) in measured.items()
        )
        total = 0.0
        for kind, depth, steps in todo:
            if (kind, depth) in measured:
                done, spent = measured[kind, depth]
                total += steps * spent / done
            else:
                total += steps * depth * per_layer_step
        return total


def duration(seconds: float) -> str:
    """A rounded duration for progress lines: '45 s', '12 min', '1 h 05 min'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class _Progress:
    """What an experiment shows as it goes: a bar over the steps of all its runs with the ETA
    of the whole experiment, and one line per finished run with its final errors."""

    def __init__(
        self, plan: Sequence[tuple[int, str, int]], run_steps: int, bar: bool, lines: bool
    ) -> None:
        self.plan, self.run_steps, self.lines = plan, run_steps, lines
        self.eta = ExperimentEta()
        self.bar = tqdm(
            total=len(plan) * run_steps,
            unit="step",
            # On a terminal only (None): no bar frames in a redirected log.
            disable=None if bar else True,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=1.0,
            # tqdm's own estimate assumes one rate for all runs; the postfix holds ours.
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} steps [{elapsed}{postfix}]",
        )
        self.index, self.trained, self.run_started = 0, 0, time.perf_counter()

    def start(self, index: int) -> None:
        seed, kind, depth = self.plan[index]
        self.index, self.trained, self.run_started = index, 0, time.perf_counter()
        self.bar.set_description(
            f"run {index + 1}/{len(self.plan)} {model_name(kind, depth)} seed {seed}"
        )

    def seconds_left(self, global_step: int) -> float | None:
        """The ETA when the current run has done `global_step` of its steps."""
        _, kind, depth = self.plan[self.index]
        todo = [(kind, depth, self.run_steps - global_step)]
        todo += [(k, d, self.run_steps) for _, k, d in self.plan[self.index + 1 :]]
        current = (kind, depth, self.trained, time.perf_counter() - self.run_started)
        return self.eta.seconds_left(todo, current)

    def on_step(self, info: StepInfo) -> None:
        self.trained += 1
        self.bar.update(self.index * self.run_steps + info.global_step - self.bar.n)
        left = self.seconds_left(info.global_step)
        if left is not None:
            self.bar.set_postfix_str(f"ETA {duration(left)}", refresh=False)

    def finish(self, run: Run) -> None:
        """Count the finished run's rate and print its line."""
        from cnnarch.train.threads import cpu_threads

        self.eta.record(run["kind"], run["depth"], self.trained, run["seconds"])
        self.bar.update((self.index + 1) * self.run_steps - self.bar.n)
        left = self.eta.seconds_left(
            [(k, d, self.run_steps) for _, k, d in self.plan[self.index + 1 :]]
        )
        train_err, test_err = final_errors(run)
        where = f"run {self.index + 1}/{len(self.plan)}"
        if self.index + 1 < len(self.plan) and left is not None:
            where += f", about {duration(left)} left"
        threads = f", {cpu_threads(run['threads'])}" if run["threads"] else ""
        if self.lines:
            self.bar.write(
                f"{run['model']:>10s} seed {run['seed']}: train error {train_err:6.2f}%  "
                f"test error {test_err:6.2f}%  ({run['seconds']:.0f} s{threads}; {where})"
            )

    def close(self) -> None:
        self.bar.close()


def run_degradation(
    settings: DegradationSettings,
    out: str | Path | None = "runs/degradation",
    *,
    resume: bool = False,
    progress: bool = True,
    data: tuple[Any, Any] | None = None,
    threads: int | None = None,
) -> Results:
    """Train plain and residual nets at every depth and seed; return (and write) the results.

    `data` (train, test) `ImageDataset`s replace loading `settings.recipe.dataset`. `threads` sets
    torch's CPU threads during training (None: each run measures which count is fastest here
    and uses it, see `cnnarch.train.threads`). Under `torchrun` every run is data-parallel and
    only rank 0 writes files and shows progress.

    Args:
        settings: the recipe, depths and seeds (`DegradationSettings`, or a preset's).
        out: the experiment's folder (results.json, the figures, one folder per run); None
            writes nothing.
        resume: continue the experiment in `out`: finished runs are read back, an unfinished
            one resumes from its last checkpoint.
        progress: a bar on a terminal and one line per finished run.
        data: (train, test) datasets to use instead of loading the recipe's.
        threads: torch's CPU threads while training (None: measured per run).

    Raises:
        CnnarchError: bad settings, missing data, or an `out` folder that holds another
            experiment or files that are not cnnarch's.
    """
    import torch

    from cnnarch.data import load_dataset
    from cnnarch.train import fit
    from cnnarch.train.distributed import DistContext
    from cnnarch.train.trainer import pick_device, steps_per_epoch

    started = time.perf_counter()
    started_utc = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out_path = Path(out) if out is not None else None
    dist = DistContext.from_env()
    device = pick_device("auto", dist)
    lock = FolderLock(out_path, "degradation experiment") if out_path and dist.is_main else None
    created_group = False
    try:
        if lock is not None:
            lock.acquire()  # before any work: an unusable or busy --out fails at once
            if lock.stale_note:
                print(f"cnnarch: warning: {lock.stale_note}", file=sys.stderr)
            check_output_folder(lock.folder)  # and one holding files cnnarch did not write
        created_group = dist.init(device)  # one process group for all runs, not one per run
        recipe = settings.recipe
        if data is None:
            data = (
                load_dataset(recipe.dataset, recipe.data_dir, train=True),
                load_dataset(recipe.dataset, recipe.data_dir, train=False),
            )
        # A preset's image counts are upper bounds: a smaller data set is used whole.
        train_n = min(recipe.subset or len(data[0]), len(data[0]))
        test_n = min(recipe.test_subset or len(data[1]), len(data[1]))
        clamped = (recipe.subset or 0) > train_n or (recipe.test_subset or 0) > test_n
        if dist.is_main and clamped:
            print(
                f"cnnarch: note: the data holds {len(data[0])} training and {len(data[1])} "
                f"test images; using {train_n} and {test_n}",
                file=sys.stderr,
            )
        per_run = {
            "subset": train_n if train_n < len(data[0]) else None,
            "test_subset": test_n if test_n < len(data[1]) else None,
            "resume": resume and out_path is not None,
            "threads": threads,
            "progress": False,
        }
        steps = steps_per_epoch(train_n, recipe.batch_size, dist.world_size)
        plan = [
            (seed, kind, depth)
            for seed in range(settings.seeds)
            for kind in KINDS
            if seed in settings.seeds_of(kind)
            for depth in settings.depths
        ]
        results: Results = {
            "experiment": "degradation",
            "format": 1,
            "complete": False,
            "settings": {
                **settings.to_dict(),
                "train_images": train_n,
                "test_images": test_n,
                "steps_per_epoch": steps,
                "classes": data[0].num_classes,
            },
            "environment": {
                "torch": torch.__version__,
                "device": str(device),
                "threads": threads,
                "world_size": dist.world_size,
                "started_utc": started_utc,
                "compile": recipe.compile,
            },
            "wall_seconds": 0.0,
            "runs": [],
            "table": [],
            "effect": None,
        }
        writer = out_path if dist.is_main else None
        if writer is not None:
            outputs = [f"{FIGURE_STEM}.{fmt}" for fmt in ("png", "svg")]
            outputs += [RESULTS_JSON, f"{TABLE_STEM}.md", f"{TABLE_STEM}.csv"]
            record_output(
                writer, outputs + [f"runs/{model_name(k, d)}-seed{s}/" for s, k, d in plan]
            )
        shown = _Progress(plan, recipe.epochs * steps, progress and dist.is_main, dist.is_main)
        try:
            for i, (seed, kind, depth) in enumerate(plan):
                shown.start(i)
                folder = (
                    f"{out_path}/runs/{model_name(kind, depth)}-seed{seed}" if out_path else None
                )
                cfg = settings.run_config(kind, depth, seed, out=folder, **per_run)
                history = fit(
                    cfg,
                    _builder(kind, depth, data[0].in_channels, data[0].num_classes),
                    on_step=shown.on_step,
                    data=data,
                )
                run = Run(
                    model=model_name(kind, depth),
                    kind=kind,
                    depth=depth,
                    seed=seed,
                    seconds=time.perf_counter() - shown.run_started,
                    threads=history[-1].get("threads"),
                    history=history,
                )
                results["runs"].append(run)
                shown.finish(run)
                _update(results, started)
                if writer is not None:
                    write_outputs(results, writer, figure=False)
        finally:
            shown.close()
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


def _update(results: Results, started: float) -> None:
    settings = results["settings"]
    results["table"] = summary_table(results["runs"])
    results["effect"] = assess_effect(
        results["runs"], train_images=settings["train_images"], classes=classes_of(settings)
    )
    results["wall_seconds"] = time.perf_counter() - started


def load_results(path: str | Path) -> Results:
    """A results.json written by `run_degradation` (a folder holding one, or the file), checked
    against `Results` field by field; a file that does not fit ends in one message naming the
    file and the field.

    Args:
        path: the file, or a folder holding `results.json`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_JSON
    results = read_json(path, "degradation results")
    if not isinstance(results, dict) or results.get("experiment") != "degradation":
        raise SchemaError(f"{path} is not a degradation results file")
    missing = [key for key in RESULT_KEYS if key not in results]
    if results.get("format") != 1 or missing:
        raise SchemaError(
            f"{path} is not in the format this cnnarch reads (format 1"
            + (f"; missing {', '.join(missing)})" if missing else ")")
        )

    def fail(where: str, problem: str) -> typing.NoReturn:
        raise SchemaError(f"{path}: field {where or '(the whole file)'} {problem}")

    check(results, Results, "", fail)
    _check_values(cast(Results, results), fail)
    return cast(Results, results)


def _check_values(results: Results, fail: Callable[[str, str], typing.NoReturn]) -> None:
    """What the types cannot say: kinds and depths the experiment knows, each run named after
    its kind and depth, errors in percent, counts that count something."""
    settings = results["settings"]
    for key in ("epochs", "batch_size", "train_images", "test_images", "steps_per_epoch"):
        if settings[key] < 1:
            fail(f"settings.{key}", f"must be at least 1, got {settings[key]}")
    if settings["preset"] not in PRESETS:
        fail("settings.preset", f"must be one of {', '.join(PRESETS)}, got {settings['preset']!r}")
    for index, run in enumerate(results["runs"]):
        where = f"runs[{index}]"
        if run["kind"] not in KINDS:
            fail(f"{where}.kind", f"must be one of {', '.join(KINDS)}, got {run['kind']!r}")
        try:
            check_depth(run["depth"])
        except CnnarchError as err:
            fail(f"{where}.depth", str(err))
        if run["model"] != model_name(run["kind"], run["depth"]):
            expected = model_name(run["kind"], run["depth"])
            fail(
                f"{where}.model", f"must be {expected!r} (its kind and depth), got {run['model']!r}"
            )
        if not run["history"]:
            fail(f"{where}.history", "must hold at least one epoch")
        for number_, epoch in enumerate(run["history"]):
            for key in ("train_error", "test_error"):
                if not 0 <= epoch[key] <= 100:
                    fail(
                        f"{where}.history[{number_}].{key}",
                        f"must be a percentage, got {epoch[key]}",
                    )
