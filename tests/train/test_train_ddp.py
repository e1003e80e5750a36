"""`torchrun --nproc_per_node=2` on the CPU (gloo) trains like one process with the same global
batch, and its checkpoint resumes in a single process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import TinyNet, tiny_config, without_timing, write_tiny_fashion

from cnnarch.train import fit, load_checkpoint

SCRIPT = Path(__file__).with_name("tiny_run.py")


@pytest.mark.slow
def test_two_process_run_matches_one_process_and_resumes_in_one(tmp_path: Path) -> None:
    # 99 images in global batches of 16: 6 full ones (8 + 8) and a last one of 3 (1 + 2).
    data_dir = write_tiny_fashion(tmp_path / "data", n_train=99, n_test=41)
    reference = fit(tiny_config(data_dir, tmp_path / "single"), lambda: TinyNet(bn=False))
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(SCRIPT), str(data_dir), str(out), "--no-bn",
        "--send-signal", "SIGTERM", "--send-at", "1:3", "--send-rank", "1",
    ]  # fmt: skip
    ddp = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert "interrupted: stopped by" in ddp.stderr, ddp.stderr[-3000:]
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["world_size"] == 2
    assert (ckpt["epoch"], ckpt["step"]) == (1, 3)  # both processes stopped at the same step
    assert len(ckpt["rng"]) == 2
    first_epoch = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    approx = pytest.approx
    assert without_timing([first_epoch])[0] == approx(without_timing(reference)[0], rel=1e-5)
    resumed = fit(tiny_config(data_dir, out, resume=True), lambda: TinyNet(bn=False))
    assert len(resumed) == 3
    for got, want in zip(without_timing(resumed), without_timing(reference), strict=True):
        assert got == approx(want, rel=1e-5, abs=1e-6)
    single = load_checkpoint(tmp_path / "single" / "checkpoint.pt")["model"]
    for key, value in load_checkpoint(out / "checkpoint.pt")["model"].items():
        torch.testing.assert_close(value, single[key], rtol=1e-5, atol=1e-6)
