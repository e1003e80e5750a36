"""The degradation experiment end to end on tiny synthetic Fashion-MNIST files; its arithmetic."""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import signal
import struct
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from cnnarch.cli import main
from cnnarch.errors import CnnarchError
from cnnarch.experiments import degradation
from cnnarch.experiments.degradation import (
    CPU_TEST_SUBSET,
    QUICK_SUBSET,
    STANDARD_EPOCHS,
    STANDARD_SUBSET,
    DegradationSettings,
    ExperimentEta,
    assess_effect,
    duration,
    mean_std,
    parse_depths,
    preset_settings,
    run_degradation,
)
from cnnarch.train import TrainingInterrupted, threads

N_TRAIN, N_TEST, SIDE = 40, 20, 12
SHIPPED = Path(degradation.__file__).parent / "results"


def write_idx_gz(path: Path, array: torch.Tensor) -> None:
    """An unsigned-byte IDX file (magic 0x00000803 or 0x00000801, big-endian sizes), gzipped."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.dim())
    header += struct.pack(f">{array.dim()}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.numpy().tobytes()))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fashion")
    gen = torch.Generator().manual_seed(0)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = torch.randint(0, 256, (n, SIDE, SIDE), generator=gen, dtype=torch.uint8)
        labels = (torch.arange(n) % 10).to(torch.uint8)
        write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(scope="module")
def quick_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`cnnarch experiment degradation` (the quick preset, 2 epochs) at depths 8 and 14, 2 seeds."""
    out = tmp_path_factory.mktemp("deg") / "out"
    argv = ["experiment", "degradation", "--depths", "14,8", "--seeds", "2", "--epochs", "2"]
    assert main([*argv, "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return out


def hand_std(values: list[float]) -> float:
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


@pytest.mark.slow
def test_writes_every_file_and_nothing_half_written(quick_run: Path) -> None:
    names = {p.name for p in quick_run.iterdir()}
    assert {"results.json", "degradation.png", "degradation.svg", "table.md", "table.csv"} <= names
    assert not [p for p in quick_run.rglob("*") if p.name.endswith(".tmp")]
    assert (quick_run / "degradation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (quick_run / "degradation.svg").read_text()


@pytest.mark.slow
def test_results_hold_settings_and_every_curve(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    assert degradation.load_results(quick_run) == results  # a run's file fits its schema
    s = results["settings"]
    assert results["complete"] is True and results["wall_seconds"] > 0
    assert s["preset"] == "quick" and s["dataset"] == "fashion-mnist" and s["epochs"] == 2
    assert (s["subset"], s["test_subset"]) == (QUICK_SUBSET, CPU_TEST_SUBSET)
    assert s["depths"] == [8, 14] and s["seeds"] == [0, 1] and s["widths"] == [16, 32, 64]
    assert (s["train_images"], s["test_images"]) == (N_TRAIN, N_TEST)  # subsets exceed the data
    assert s["steps_per_epoch"] == math.ceil(N_TRAIN / s["batch_size"])
    runs = results["runs"]
    expected = {(k, d, seed) for k in ("plain", "residual") for d in (8, 14) for seed in (0, 1)}
    assert {(r["kind"], r["depth"], r["seed"]) for r in runs} == expected
    for run in runs:
        assert [row["epoch"] for row in run["history"]] == list(range(1, s["epochs"] + 1))
        assert run["model"] == ("resnet" if run["kind"] == "residual" else "plain") + str(
            run["depth"]
        )
        for row in run["history"]:
            assert 0 <= row["train_error"] <= 100 and 0 <= row["test_error"] <= 100


@pytest.mark.slow
def test_every_run_used_identical_settings(quick_run: Path) -> None:
    configs = [json.loads(p.read_text()) for p in quick_run.glob("runs/*/config.json")]
    assert len(configs) == 8
    varying = {"model", "seed", "out"}
    shared = [{k: v for k, v in c.items() if k not in varying} for c in configs]
    assert all(c == shared[0] for c in shared)
    assert {c["model"] for c in configs} == {"plain8", "plain14", "resnet8", "resnet14"}


@pytest.mark.slow
def test_table_is_the_mean_and_sample_std_of_the_final_errors(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    rows = {row["model"]: row for row in results["table"]}
    assert list(rows) == ["plain8", "plain14", "resnet8", "resnet14"]
    for name, row in rows.items():
        finals = [r["history"][-1] for r in results["runs"] if r["model"] == name]
        for metric in ("train_error", "test_error"):
            values = [f[metric] for f in finals]
            assert row[f"{metric}_mean"] == pytest.approx(sum(values) / 2)
            assert row[f"{metric}_std"] == pytest.approx(hand_std(values))
    with open(quick_run / "table.csv", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["model"] for r in csv_rows] == list(rows)
    for r in csv_rows:
        assert float(r["train_error_mean"]) == pytest.approx(rows[r["model"]]["train_error_mean"])
    markdown = (quick_run / "table.md").read_text()
    row = rows["plain14"]
    assert f"{row['train_error_mean']:.2f} ± {row['train_error_std']:.2f}" in markdown
    assert f"{N_TRAIN} training images" in markdown and "seeds 0,1" in markdown


@pytest.mark.slow
def test_effect_is_deep_minus_shallow_training_error(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    final = {
        (r["kind"], r["depth"], r["seed"]): r["history"][-1]["train_error"] for r in results["runs"]
    }
    effect = results["effect"]
    assert (effect["shallow"], effect["deep"]) == (8, 14)
    for entry in effect["per_seed"]:
        seed = entry["seed"]
        assert entry["plain_gap"] == pytest.approx(
            final["plain", 14, seed] - final["plain", 8, seed]
        )
        assert entry["residual_gap"] == pytest.approx(
            final["residual", 14, seed] - final["residual", 8, seed]
        )


@pytest.mark.slow
def test_rerun_needs_resume_and_resume_reuses_the_finished_runs(
    quick_run: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = json.loads((quick_run / "results.json").read_text())
    argv = ["experiment", "degradation", "--depths", "8,14", "--seeds", "2", "--epochs", "2"]
    argv += ["--data-dir", str(data_dir), "--out", str(quick_run)]
    assert main(argv) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    after = json.loads((quick_run / "results.json").read_text())
    assert [r["history"] for r in after["runs"]] == [r["history"] for r in before["runs"]]


@pytest.mark.parametrize(
    ("depths", "message"),
    [
        ("20,21", "unknown depth 21"),
        ("20,x", "comma-separated integers"),
        ("56", "at least two"),
        ("20,20", "at least two"),
        ("2,20", "unknown depth 2"),
    ],
)
def test_bad_depths_end_in_one_message_and_write_nothing(
    depths: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["experiment", "degradation", "--depths", depths, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_seeds_epochs_and_missing_data_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["experiment", "degradation", "--seeds", "0", "--out", str(out)]) == 2
    assert "seeds must be at least 1" in capsys.readouterr().err
    assert main(["experiment", "degradation", "--epochs", "0", "--out", str(out)]) == 2
    assert "epochs must be at least 1" in capsys.readouterr().err
    argv = ["experiment", "degradation", "--data-dir", str(tmp_path / "nope"), "--out", str(out)]
    assert main(argv) == 2
    assert "Fashion-MNIST not found" in capsys.readouterr().err
    assert not out.exists()


def test_parse_depths_sorts_and_accepts_every_6n_plus_2() -> None:
    assert parse_depths("56, 20") == (20, 56)
    assert parse_depths("8,14,110") == (8, 14, 110)
    with pytest.raises(CnnarchError):
        DegradationSettings(preset="quick", depths=(20, 27))


def test_mean_std_by_hand() -> None:
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt(5 / 3))
    assert mean_std([7.0]) == (7.0, None)


def _run(kind: str, depth: int, seed: int, train_error: float) -> dict:
    history = [{"epoch": 1, "train_error": train_error, "test_error": 50.0}]
    return {"kind": kind, "depth": depth, "seed": seed, "history": history}


@pytest.mark.parametrize(
    ("plain_deep", "resnet_deep", "verdict"),
    [
        ((30.0, 31.0), (9.0, 10.0), "shown"),  # plain worse and ResNet better in every seed
        ((30.0, 31.0), (9.0, 10.5), "shown on average"),  # seed 1: ResNet-deep 0.5 worse
        ((19.0, 31.0), (9.0, 10.0), "shown on average"),  # plain gaps -1 and +11
        ((30.0, 31.0), (12.0, 11.0), "not shown"),  # ResNet-deep worse on average
    ],
)
def test_effect_verdict(plain_deep: tuple, resnet_deep: tuple, verdict: str) -> None:
    runs = []
    for seed in (0, 1):
        runs += [
            _run("plain", 20, seed, 20.0),
            _run("plain", 56, seed, plain_deep[seed]),
            _run("residual", 20, seed, 10.0),
            _run("residual", 56, seed, resnet_deep[seed]),
        ]
    effect = assess_effect(runs)
    assert effect is not None
    assert effect["plain_gap_mean"] == pytest.approx(sum(plain_deep) / 2 - 20.0)
    assert effect["residual_gap_mean"] == pytest.approx(sum(resnet_deep) / 2 - 10.0)
    assert effect["verdict"] == verdict


def test_plain_nets_with_fewer_seeds_are_judged_on_the_seeds_they_have() -> None:
    runs = [_run("plain", 20, 0, 20.0), _run("plain", 56, 0, 50.0)]
    for seed, deep in ((0, 9.0), (1, 10.5), (2, 8.0)):  # gaps -1, +0.5, -2 against 10
        runs += [_run("residual", 20, seed, 10.0), _run("residual", 56, seed, deep)]
    effect = assess_effect(runs)
    assert effect is not None
    assert [(s["seed"], s["plain_gap"]) for s in effect["per_seed"]] == [
        (0, 30.0),
        (1, None),
        (2, None),
    ]
    assert [s["residual_gap"] for s in effect["per_seed"]] == [-1.0, 0.5, -2.0]
    assert effect["plain_gap_mean"] == 30.0
    assert effect["residual_gap_mean"] == pytest.approx(-2.5 / 3)
    assert effect["verdict"] == "shown on average"  # seed 1's ResNet-56 is 0.5 behind
    # Without a residual pair there is nothing to judge yet.
    assert assess_effect([*runs[:2], _run("residual", 20, 0, 10.0)]) is None


def test_standard_preset_runs_the_plain_nets_with_fewer_seeds(
    data_dir: Path, two_threads_fastest: None
) -> None:
    settings = degradation.preset_settings("standard", data_dir=str(data_dir))
    assert (settings.recipe.subset, settings.recipe.epochs, settings.recipe.batch_size) == (
        STANDARD_SUBSET,
        STANDARD_EPOCHS,
        32,
    )
    assert settings.seeds_of("residual") == [0, 1] and settings.seeds_of("plain") == [0]
    assert degradation.preset_settings("standard", seeds=1).seeds_of("plain") == [0]
    assert degradation.preset_settings("quick").seeds_of("plain") == [0, 1, 2]
    small = preset_settings("standard", data_dir=str(data_dir), depths=(8, 14), epochs=1, subset=16)
    results = run_degradation(small, out=None, progress=False)
    ran = [(r["kind"], r["depth"], r["seed"]) for r in results["runs"]]
    assert ran == [
        ("plain", 8, 0),
        ("plain", 14, 0),
        ("residual", 8, 0),
        ("residual", 14, 0),
        ("residual", 8, 1),
        ("residual", 14, 1),
    ]
    assert results["settings"]["seeds"] == [0, 1]
    assert results["settings"]["plain_seeds"] == [0]
    assert [row["seeds"] for row in results["table"]] == [1, 1, 2, 2]
    with pytest.raises(CnnarchError, match="plain_seeds must be between 1 and seeds"):
        replace(settings, plain_seeds=3)


@pytest.mark.parametrize("preset", ["quick", "standard"])
def test_presets_record_the_settings_of_the_shipped_runs(preset: str) -> None:
    shipped = degradation.load_results(SHIPPED / f"degradation_{preset}.json")["settings"]
    from_data = ("train_images", "test_images", "steps_per_epoch")
    recorded = {k: v for k, v in shipped.items() if k not in from_data}
    assert json.loads(json.dumps(preset_settings(preset).to_dict())) == recorded
    assert list(preset_settings(preset).to_dict()) == list(recorded)  # same order in the file


def test_a_run_is_the_recipe_with_its_model_seed_and_warmup() -> None:
    settings = preset_settings("full")
    deep = settings.run_config("residual", 110, 2, out="x")
    assert (deep.model, deep.seed, deep.warmup_steps, deep.out) == ("resnet110", 2, 400, "x")
    shallow = settings.run_config("plain", 20, 0)
    assert (shallow.model, shallow.warmup_steps) == ("plain20", 0)
    varying = {"model", "seed", "warmup_steps", "out"}
    for run in (deep, shallow):
        assert {k: v for k, v in vars(run).items() if k not in varying} == {
            k: v for k, v in vars(settings.recipe).items() if k not in varying
        }
    assert (settings.recipe.epochs, settings.recipe.batch_size, settings.recipe.lr) == (
        164,
        128,
        0.1,
    )
    wider = settings.with_recipe(batch_size=256, lr=0.2)
    assert (wider.recipe.batch_size, wider.recipe.lr, wider.recipe.epochs) == (256, 0.2, 164)
    assert (wider.depths, wider.seeds, wider.paper_warmup) == (settings.depths, 3, True)
    with pytest.raises(CnnarchError, match="batch_size must be at least 1"):
        settings.with_recipe(batch_size=0)


@pytest.mark.slow
def test_library_run_without_files(data_dir: Path) -> None:
    settings = preset_settings(
        "quick", data_dir=str(data_dir), depths=(8, 14), seeds=1, epochs=1, subset=16
    )
    results = run_degradation(settings, out=None, progress=False)
    assert results["settings"]["train_images"] == 16 and len(results["runs"]) == 4
    assert [row["seeds"] for row in results["table"]] == [1, 1, 1, 1]
    assert all(row["train_error_std"] is None for row in results["table"])


def test_eta_from_measured_rates_and_by_depth_for_models_not_yet_run() -> None:
    eta = ExperimentEta()
    assert eta.seconds_left([("plain", 20, 10)]) is None  # nothing measured yet
    eta.record("plain", 20, 0, 3.0)  # a run resumed as finished trains nothing: no rate
    assert eta.seconds_left([("plain", 20, 10)]) is None
    eta.record("plain", 20, 100, 50.0)  # 0.5 s/step; 0.025 s per step and layer
    assert eta.seconds_left([("plain", 20, 10)]) == pytest.approx(5.0)
    assert eta.seconds_left([("residual", 56, 10)]) == pytest.approx(10 * 56 * 0.025)
    # The run under way counts: resnet56 at 1.2 s/step so far.
    todo = [("residual", 56, 40), ("plain", 20, 10), ("residual", 20, 10)]
    per_layer = (50.0 + 12.0) / (100 * 20 + 10 * 56)
    expected = 40 * 1.2 + 10 * 0.5 + 10 * 20 * per_layer
    assert eta.seconds_left(todo, current=("residual", 56, 10, 12.0)) == pytest.approx(expected)
    eta.record("plain", 20, 100, 70.0)  # a second seed: the rate is over both runs
    assert eta.seconds_left([("plain", 20, 10)]) == pytest.approx(6.0)


def test_duration_reads_as_seconds_minutes_or_hours() -> None:
    assert [duration(s) for s in (0, 44.6, 60, 719, 3600, 3930)] == [
        "0 s",
        "45 s",
        "1 min",
        "12 min",
        "1 h 00 min",
        "1 h 06 min",
    ]


@pytest.fixture
def two_threads_fastest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs measure 1 and 2 threads and find 2 faster, whatever the machine's load."""
    monkeypatch.setattr(threads, "candidate_counts", lambda: [1, 2])
    monkeypatch.setattr(threads, "time_steps", lambda step, counts, **kw: {1: 0.5, 2: 0.25})


def test_one_line_per_finished_run_with_errors_threads_and_time_left(
    data_dir: Path, two_threads_fastest: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = preset_settings(
        "quick", data_dir=str(data_dir), depths=(8, 14), seeds=1, epochs=1, subset=16
    )
    results = run_degradation(settings, out=None, progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert results["environment"]["threads"] is None  # chosen per run
    for i, (line, run) in enumerate(zip(lines, results["runs"], strict=True)):
        train_error, test_error = (run["history"][-1][k] for k in ("train_error", "test_error"))
        assert line.strip().startswith(f"{run['model']} seed 0: train error {train_error:6.2f}%")
        assert f"test error {test_error:6.2f}%" in line
        assert run["threads"] == 2 and ", 2 CPU threads;" in line
        assert f"run {i + 1}/4" in line
        assert ("left)" in line) == (i < 3)  # every run but the last says the time left


def test_interrupted_experiment_resumes_to_the_uninterrupted_results(
    data_dir: Path, tmp_path: Path, two_threads_fastest: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = preset_settings(
        "quick", data_dir=str(data_dir), depths=(8, 14), seeds=1, epochs=2, subset=16
    )
    reference = run_degradation(settings, tmp_path / "reference", progress=False)
    on_step = degradation._Progress.on_step

    def stop_in_third_run(self, info) -> None:
        on_step(self, info)
        if self.index == 2 and (info.epoch, info.step) == (1, 1):
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(degradation._Progress, "on_step", stop_in_third_run)
    out = tmp_path / "stopped"
    with pytest.raises(TrainingInterrupted):
        run_degradation(settings, out, progress=False)
    partial = json.loads((out / "results.json").read_text())
    assert partial["complete"] is False and len(partial["runs"]) == 2
    monkeypatch.setattr(degradation._Progress, "on_step", on_step)
    resumed = run_degradation(settings, out, resume=True, progress=False)
    assert resumed["complete"] is True

    def curves(results: dict) -> list:
        timing = ("images_per_s", "seconds")
        return [
            [{k: v for k, v in row.items() if k not in timing} for row in run["history"]]
            for run in results["runs"]
        ]

    assert curves(resumed) == curves(reference)
    assert resumed["table"] == reference["table"]


def test_load_results_names_what_is_wrong_with_a_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"experiment": "degradation", "format": 1, "runs": []}')
    with pytest.raises(CnnarchError, match="missing complete, settings, environment"):
        degradation.load_results(path)
    path.write_text('[{"model": "plain20"}]')
    with pytest.raises(CnnarchError, match="is not a degradation results file"):
        degradation.load_results(tmp_path)  # a folder holding results.json
    path.write_text("{not json")
    with pytest.raises(CnnarchError, match="cannot read degradation results"):
        degradation.load_results(path)


# --- results.json read against its schema, field by field ---------------------------------------


def _shipped_text() -> str:
    return (SHIPPED / "degradation_quick.json").read_text()


def _with(change) -> str:
    results = json.loads(_shipped_text())
    change(results)
    return json.dumps(results)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (_with(lambda r: r.update(runs="abc")), "runs", "must be a list, got the string 'abc'"),
        (_with(lambda r: r.update(settings=None)), "settings", "must be an object, got null"),
        (
            _with(lambda r: r["runs"][1]["history"][2].update(train_error="x")),
            "runs[1].history[2].train_error",
            "must be a number, got the string 'x'",
        ),
        (
            _shipped_text().replace('"wall_seconds": ', '"wall_seconds": NaN, "was": ', 1),
            "wall_seconds",
            "must be a number, got NaN",
        ),
        (
            _shipped_text().replace('"epochs": 6', '"epochs": ' + "9" * 5000, 1),
            "settings.epochs",
            "must be an integer, got a 5000-digit integer",
        ),
        (
            _with(lambda r: r["settings"].update(epochs=2**60)),
            "settings.epochs",
            "must be an integer, got a 19-digit integer",
        ),
        (
            _with(lambda r: r.update(wall_seconds=1e308 * 10)),
            "wall_seconds",
            "must be a number, got Infinity",
        ),
        (_with(lambda r: r["settings"].update(epochs=True)), "settings.epochs", "got true"),
        (
            _with(lambda r: r["settings"].pop("seeds")),
            "settings",
            "is missing seeds",
        ),
        (
            _with(lambda r: r["runs"][0].update(kind="<script>")),
            "runs[0].kind",
            "must be one of plain, residual, got '<script>'",
        ),
        (
            _with(lambda r: r["runs"][0].update(model="resnet20")),
            "runs[0].model",
            "must be 'plain20' (its kind and depth), got 'resnet20'",
        ),
        (
            _with(lambda r: r["runs"][0]["history"][0].update(test_error=250.0)),
            "runs[0].history[0].test_error",
            "must be a percentage, got 250.0",
        ),
        (_with(lambda r: r["runs"][0].update(history=[])), "runs[0].history", "at least one"),
    ],
)
def test_a_results_file_that_does_not_fit_names_the_file_and_the_field(
    tmp_path: Path, text: str, field: str, problem: str
) -> None:
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(CnnarchError) as caught:
        degradation.load_results(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: field {field} ") and problem in message
    assert "\n" not in message


def test_a_file_nested_too_deeply_is_a_clear_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("[" * 100_000)
    with pytest.raises(CnnarchError, match=f"cannot read degradation results {path}: nested too"):
        degradation.load_results(path)


def test_the_shipped_files_fit_the_schema() -> None:
    for preset in ("quick", "standard"):
        results = degradation.load_results(SHIPPED / f"degradation_{preset}.json")
        assert results["settings"]["preset"] == preset


# --- a verdict only for nets that learned --------------------------------------------------------


def test_learning_is_judged_against_chance_and_its_sampling_error() -> None:
    # 10 classes: chance is 90% error; on 128 images its sampling error is
    # sqrt(0.9 x 0.1 / 128) = 2.65 points, so "clearly below" is below 84.70%.
    assert degradation.sampling_error(90.0, 128) == pytest.approx(100 * math.sqrt(0.09 / 128))
    assert degradation.learned(84.6, 128, 10) and not degradation.learned(84.8, 128, 10)
    assert degradation.learned(87.0, 60_000, 10)  # 0.12 points of noise on 60,000 images


def test_nets_at_chance_leave_the_effect_not_judged() -> None:
    runs = [
        _run("plain", 20, 0, 89.0),
        _run("plain", 56, 0, 91.0),  # "plain degrades" by 2 points, both at chance
        _run("residual", 20, 0, 90.5),
        _run("residual", 56, 0, 88.0),
    ]
    assert assess_effect(runs)["verdict"] == "shown"  # without knowing the data: as before
    effect = assess_effect(runs, train_images=128, classes=10)
    assert effect["verdict"].startswith("not judged: plain56 (seed 0) did not learn")
    assert "chance 90.0% on 128 images" in effect["verdict"]


@pytest.fixture(scope="module")
def chance_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """128 training images whose labels are noise: nothing to learn."""
    folder = tmp_path_factory.mktemp("noise")
    gen = torch.Generator().manual_seed(1)
    for prefix, n in (("train", 128), ("t10k", 32)):
        images = torch.randint(0, 256, (n, SIDE, SIDE), generator=gen, dtype=torch.uint8)
        labels = torch.randint(0, 10, (n,), generator=gen, dtype=torch.uint8)
        write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.mark.slow
def test_a_one_epoch_run_at_chance_does_not_print_effect_shown(
    chance_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["experiment", "degradation", "--depths", "8,14", "--seeds", "1", "--epochs", "1"]
    argv += ["--subset", "128", "--data-dir", str(chance_data), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "effect not judged: " in printed and "did not learn" in printed
    assert "effect shown" not in printed
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["settings"]["classes"] == 10
