"""Training: `fit(TrainConfig(...))` trains a zoo model (or yours) on an in-memory dataset.

```python
from cnnarch.train import TrainConfig, fit
cfg = TrainConfig(model="plain20", dataset="fashion-mnist", epochs=3, batch_size=128, lr=0.1,
                  schedule="step", subset=None, seed=0, out="runs/plain20")
history = fit(cfg)  # per epoch: epoch, train_loss, train_error, test_loss, test_error (errors
                    # in %), lr, images_per_s, seconds, global_step, threads
```
`schedule="step"` divides the learning rate by 10 at 50% and 75% of the steps, "cosine"
anneals it to zero. With `out`, the run folder gets `config.json`, `metrics.jsonl`,
`metrics.csv` and atomic checkpoints (each epoch, on SIGINT/SIGTERM, optionally every
`checkpoint_every` steps); `resume=True` continues bit-exactly. Same seed, same device, same
numbers. Under `torchrun` the run is data-parallel (DDP) with the same global batch.

`fit(cfg, model)` trains your own module (or a function building one) instead of
`cfg.model`; `fit(cfg, data=(train, test))` trains on `ImageDataset`s you built;
`fit(cfg, on_step=f)` calls `f(StepInfo)` after every step. A SIGINT/SIGTERM ends `fit` with
`TrainingInterrupted` once the checkpoint is written; a NaN loss with `CnnarchError`.
"""

from cnnarch.train.checkpoint import CheckpointError, load_checkpoint
from cnnarch.train.config import (
    SCHEDULES,
    TRAIN_DEVICES,
    TRAIN_PRESETS,
    TrainConfig,
    build_config,
    paper_preset,
)
from cnnarch.train.trainer import StepInfo, TrainingInterrupted, fit, run_summary, summary_line

__all__ = [
    "SCHEDULES",
    "TRAIN_DEVICES",
    "TRAIN_PRESETS",
    "CheckpointError",
    "StepInfo",
    "TrainConfig",
    "TrainingInterrupted",
    "build_config",
    "fit",
    "load_checkpoint",
    "paper_preset",
    "run_summary",
    "summary_line",
]
