"""Runs a tiny training in its own process (python or torchrun), optionally signalling itself.

usage: tiny_run.py DATA_DIR OUT [--epochs N] [--no-bn] [--dropout P] [--resume]
                   [--checkpoint-every N] [--send-signal NAME --send-at EPOCH:STEP [--send-rank R]]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from train_helpers import TinyNet, tiny_config  # this folder is sys.path[0] for a script

from cnnarch.train import StepInfo, TrainingInterrupted, fit


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("data_dir")
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--no-bn", action="store_true")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--send-signal", choices=("SIGKILL", "SIGTERM", "SIGINT"))
    p.add_argument("--send-at", default="1:3", help="EPOCH:STEP after which to send the signal")
    p.add_argument("--send-rank", type=int, default=0, help="the process that signals itself")
    args = p.parse_args()
    cfg = tiny_config(
        Path(args.data_dir),
        Path(args.out),
        epochs=args.epochs,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
    )
    epoch, step = (int(v) for v in args.send_at.split(":"))

    def on_step(info: StepInfo) -> None:
        if args.send_signal and (info.epoch, info.step, info.rank) == (epoch, step, args.send_rank):
            os.kill(os.getpid(), getattr(signal, args.send_signal))

    try:
        fit(cfg, lambda: TinyNet(bn=not args.no_bn, dropout=args.dropout), on_step=on_step)
    except TrainingInterrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
