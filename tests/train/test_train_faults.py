"""Faults a real run meets: a second run on the same folder, a full disk, an unusable --out,
NaN test losses, impossible subsets, Ctrl-C during exit, and the modes of the files written."""

from __future__ import annotations

import errno
import io
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from train_helpers import TinyNet, tiny_config, write_tiny_fashion

from cnnarch import files
from cnnarch.cli import main
from cnnarch.errors import CnnarchError
from cnnarch.train import CheckpointError, StepInfo, fit, load_checkpoint

HERE = Path(__file__).parent
PYTHON = sys.executable


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_fashion(tmp_path_factory.mktemp("data"), n_train=64, n_test=20)


def strict_json(line: str) -> Any:
    """json.loads that rejects NaN and Infinity, as strict JSON parsers do."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(line, parse_constant=refuse)


def one_error_line(err: str, *needles: str) -> None:
    assert err.startswith("cnnarch: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


# --- one run per --out -------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_run_on_a_busy_out_fails_at_once_naming_the_holder(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    first = subprocess.Popen(
        [PYTHON, str(HERE / "tiny_run.py"), str(data), str(out), "--epochs", "100000"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # Its first checkpoint: the run is training, with its SIGTERM handler in place.
        while not (out / "checkpoint.pt").exists() and first.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(CnnarchError) as caught:
            fit(tiny_config(data, out, epochs=1), TinyNet)
        message = str(caught.value)
        assert f"PID {first.pid} on {socket.gethostname()}" in message
        assert "in use" in message and "another --out" in message
        assert time.perf_counter() - started < 5  # at once: before data and model
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
    # The first run stopped cleanly, and its exit cleared the lock.
    assert first.returncode == 3, first.stderr.read()
    assert not (out / files.LOCK_NAME).exists()
    rows = [strict_json(r)["epoch"] for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows == sorted(set(rows))  # every epoch once: no second writer


def test_a_stale_lock_is_reported_and_taken_over(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = subprocess.Popen([PYTHON, "-c", "pass"])
    gone.wait()  # a PID no process has any more (like a run killed with -9)
    out = tmp_path / "run"
    out.mkdir()
    lock = {"pid": gone.pid, "host": socket.gethostname(), "started": "earlier"}
    (out / files.LOCK_NAME).write_text(json.dumps(lock))
    fit(tiny_config(data, out, epochs=1), TinyNet)
    assert f"removed a stale lock in {out}: PID {gone.pid}" in caplog.text
    assert not (out / files.LOCK_NAME).exists()


def test_a_lock_from_another_host_is_not_taken_over(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    lock = {"pid": 1, "host": "elsewhere.example", "started": "earlier"}
    (out / files.LOCK_NAME).write_text(json.dumps(lock))
    with pytest.raises(CnnarchError, match=r"on host elsewhere\.example .* delete .*cnnarch\.lock"):
        fit(tiny_config(data, out, epochs=1), TinyNet)
    assert (out / files.LOCK_NAME).exists()


# --- losses and metrics ----------------------------------------------------------------------


class NaNWhenTesting(TinyNet):
    """Trains normally; its evaluation logits are NaN."""

    def forward(self, x: torch.Tensor) -> Any:
        out = super().forward(x)
        return out if self.training else out * float("nan")


def test_a_nan_test_loss_stops_the_run_and_metrics_stay_strict_json(
    data: Path, tmp_path: Path
) -> None:
    with pytest.raises(CnnarchError, match=r"the test loss became nan after epoch 1"):
        fit(tiny_config(data, tmp_path, epochs=2), NaNWhenTesting)
    (line,) = (tmp_path / "metrics.jsonl").read_text().splitlines()
    row = strict_json(line)
    assert row["epoch"] == 1 and row["test_loss"] is None
    assert row["nonfinite"] == ["test_loss"]
    assert row["train_loss"] > 0  # the finite values are kept as they were


def test_a_subset_larger_than_the_data_is_an_error(
    data: Path, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    argv = ["train", "resnet20", "--data-dir", str(data), "--no-progress", "--out", str(tmp_path)]
    assert main([*argv, "--subset", "1000"]) == 2
    one_error_line(capsys.readouterr().err, "subset of 1000 images", "holds only 64")
    assert main([*argv, "--test-subset", "21"]) == 2
    one_error_line(capsys.readouterr().err, "subset of 21 images", "holds only 20")


# --- unusable --out, resume messages -----------------------------------------------------------


def unusable_outs(tmp_path: Path) -> dict[str, Path]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return {
        "an existing file": blocker,
        "a file's child": blocker / "run",
        "a new path in /proc": Path("/proc/cnnarch-no-such-folder"),
        "a /proc folder": Path("/proc/self"),
    }


@pytest.mark.parametrize("case", ["an existing file", "a file's child", "a new path in /proc",
                                  "a /proc folder"])  # fmt: skip
def test_an_unusable_out_is_one_message_and_status_2(
    case: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = str(unusable_outs(tmp_path)[case])
    argv = ["train", "resnet20", "--data-dir", str(data), "--epochs", "1", "--no-progress"]
    assert main([*argv, "--out", out]) == 2
    one_error_line(capsys.readouterr().err, out)
    argv = ["experiment", "degradation", "--depths", "8,14", "--seeds", "1", "--epochs", "1"]
    assert main([*argv, "--data-dir", str(data), "--out", out]) == 2
    one_error_line(capsys.readouterr().err, out)


def test_resume_in_a_folder_without_a_run_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, f"no run to resume in {tmp_path}")
    assert main(["train", "--resume", "--out", str(tmp_path / "typo")]) == 2
    one_error_line(capsys.readouterr().err, f"no run to resume in {tmp_path / 'typo'}")


def test_an_unsafe_checkpoint_is_refused_without_advice_to_load_it_unsafely(
    tmp_path: Path,
) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "x", "hook": print}, path)  # a global that weights_only refuses
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "not a safe checkpoint" in message and "print" in message
    for advice in ("weights_only", "can still be loaded", "trust the source", "\x1b["):
        assert advice not in message


# --- a full disk -------------------------------------------------------------------------------


class FullDisk:
    """Makes every write through cnnarch.files fail with ENOSPC once `full` is set, as a full
    disk does: the first bytes may go through, the write that finds no room fails."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        fdopen = os.fdopen

        def open_checked(fd: int, *args: Any, **kwargs: Any) -> io.IOBase:
            handle = fdopen(fd, *args, **kwargs)
            write = handle.write

            def write_until_full(data: Any) -> int:
                if self.full:
                    write(bytes(data)[:100])
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return write(data)

            handle.write = write_until_full
            return handle

        monkeypatch.setattr(files.os, "fdopen", open_checked)


def test_a_full_disk_stops_training_with_the_reason_and_keeps_the_checkpoint(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch)

    def fill_after_epoch_1(info: StepInfo) -> None:
        disk.full = info.epoch == 1

    with pytest.raises(CnnarchError) as caught:
        fit(tiny_config(data, tmp_path, epochs=3), TinyNet, on_step=fill_after_epoch_1)
    message = str(caught.value)
    assert "No space left on device" in message and "continue with --resume" in message
    assert "unexpected pos" not in message
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / files.LOCK_NAME).exists()


def in_own_mounts(script: str) -> subprocess.CompletedProcess:
    """Runs the shell `script` in a user and mount namespace of its own, where it may mount a
    tmpfs (no privileges needed, and the mount vanishes with the process)."""
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )


def tmpfs_available() -> bool:
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return False
    return in_own_mounts("mount -t tmpfs -o size=64k tmpfs /mnt").returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not tmpfs_available(), reason="cannot mount a tmpfs (needs user namespaces)")
def test_a_real_full_tmpfs_stops_training_cleanly(data: Path, tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    # A resnet20 checkpoint takes 2.2 MB, its weights alone (model.pt, best.pt) 1.1 MB each:
    # 5 MB hold the first epoch's files, not the second's beside them.
    train = (
        f"{PYTHON} -m cnnarch train resnet20 --data-dir {data} --epochs 3 --batch-size 32 "
        f"--no-progress --threads 1 --out {mount}/run"
    )
    done = in_own_mounts(
        f"mount -t tmpfs -o size=5m tmpfs {mount} && {train}; echo rc=$?; ls -a {mount}/run"
    )
    one_error_line(done.stderr, "No space left on device", "checkpoint.pt is kept")
    assert "rc=2" in done.stdout
    listing = done.stdout.split()
    assert "checkpoint.pt" in listing and files.LOCK_NAME not in listing
    assert not [name for name in listing if name.endswith(".tmp")]


@pytest.mark.slow
@pytest.mark.skipif(not tmpfs_available(), reason="cannot mount a tmpfs (needs user namespaces)")
def test_a_read_only_out_is_one_message_and_status_2(data: Path, tmp_path: Path) -> None:
    mount = tmp_path / "read-only"
    mount.mkdir()
    train = ["train", "resnet20", "--data-dir", str(data), "--out", f"{mount}/run"]
    experiment = ["experiment", "degradation", "--data-dir", str(data), "--out", f"{mount}/deg"]
    both = f"from cnnarch.cli import main; print(main({train!r}), main({experiment!r}))"
    done = in_own_mounts(f"mount -t tmpfs -o ro tmpfs {mount} && {PYTHON} -c {shlex.quote(both)}")
    assert done.stdout.split() == ["2", "2"], done.stderr
    assert done.stderr.splitlines() == [
        f"cnnarch: error: cannot create folder {mount}/run: Read-only file system",
        f"cnnarch: error: cannot create folder {mount}/deg: Read-only file system",
    ]


# --- Ctrl-C during exit, file modes ------------------------------------------------------------

CTRL_C_AT_EXIT = """
import atexit, os, signal, sys
import cnnarch.train
from cnnarch.cli import main
from cnnarch.train import TrainingInterrupted

def stopped(config):
    if sys.argv[1] == "signal":
        raise TrainingInterrupted("stopped by SIGINT; checkpoint saved", signal.SIGINT)
    raise KeyboardInterrupt  # a second Ctrl-C, which stops at once

cnnarch.train.fit = stopped
# Another Ctrl-C while the exit handlers run, as when a user presses it three times.
atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))
sys.exit(main(["train", "resnet20"]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["signal", "keyboard"])
def test_ctrl_c_during_exit_prints_no_traceback(how: str) -> None:
    done = subprocess.run(
        [PYTHON, "-c", CTRL_C_AT_EXIT, how], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 130
    assert done.stderr.count("\n") == 1, done.stderr  # the one clean message
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_take_the_umask_like_open_does(
    umask: int, data: Path, tmp_path: Path
) -> None:
    previous = os.umask(umask)
    try:
        fit(tiny_config(data, tmp_path, epochs=1), TinyNet)
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(previous)
    expected = (tmp_path / "plain").stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    for name in ("checkpoint.pt", "config.json", "metrics.jsonl", "metrics.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name


def test_a_rewritten_file_keeps_its_mode(data: Path, tmp_path: Path) -> None:
    fit(tiny_config(data, tmp_path, epochs=1), TinyNet)
    (tmp_path / "config.json").chmod(0o640)
    fit(tiny_config(data, tmp_path, epochs=2, resume=True), TinyNet)
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o640


def test_a_full_disk_when_a_run_starts_leaves_no_lock_that_blocks_the_next(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    disk = FullDisk(monkeypatch)
    disk.full = True
    out = tmp_path / "run"
    argv = ["train", "resnet20", "--data-dir", str(data), "--epochs", "1", "--no-progress"]
    assert main([*argv, "--threads", "1", "--out", str(out)]) == 2
    one_error_line(capsys.readouterr().err, "cnnarch.lock: No space left on device")
    assert not out.exists()  # neither an empty lock nor the folder it would have made
    disk.full = False
    fit(tiny_config(data, out, epochs=1), TinyNet)  # the disk has room again: not blocked
    assert (out / "checkpoint.pt").exists() and not (out / files.LOCK_NAME).exists()


def test_a_lock_file_cannot_drive_the_terminal(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    hostile = {"pid": 1, "host": "\x1b[2J\x1b]0;pwned\x07elsewhere", "started": "\x1b[31m"}
    (out / files.LOCK_NAME).write_text(json.dumps(hostile))
    assert main(["train", "resnet20", "--data-dir", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    one_error_line(err, "on host \\x1b[2J\\x1b]0;pwned\\x07elsewhere", "started \\x1b[31m")
    assert not any(ch in err for ch in "\x1b\x07")
