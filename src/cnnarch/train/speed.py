"""How a run computes its steps fastest: eagerly or through `torch.compile`.

`torch.compile` makes each CPU training step faster but costs minutes of compiling first
(TorchInductor generates and builds C++ kernels; a later run of the same model finds most of
them in its on-disk cache). `compile="auto"` compiles when the time it is expected to save
within the run exceeds the time it is expected to cost: the eager step time is measured at the
start (the thread probe's steps), the gain and the cost are those `benchmarks/bench_train.py`
measured (below, with the command). On a GPU, where cnnarch has measured neither, "auto" trains
eagerly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Measured by `python benchmarks/bench_train.py` (docs/training.md): the step-time saving of
# compiled over eager training on a CPU, and the compile time of a first run.
COMPILE_GAIN = 0.15
COMPILE_SECONDS = 120.0


@dataclass(frozen=True)
class CompileChoice:
    """Whether a run trains through `torch.compile`, and why (for the log)."""

    compiled: bool
    why: str


def choose_compile(
    setting: str,
    device: torch.device,
    step_seconds: float | None,
    steps_left: int,
    resumed: bool | None = None,
) -> CompileChoice:
    """Compile or not, for `setting` ("on", "off", "auto").

    Args:
        setting: the config's `compile`.
        device: the training device.
        step_seconds: the measured seconds of one eager step, or None when not measured.
        steps_left: the optimizer steps the run has still to do.
        resumed: what the checkpoint being resumed chose (its numbers depend on it), or None.
    """
    if setting != "auto":
        return CompileChoice(setting == "on", f"compile={setting}")
    if resumed is not None:
        return CompileChoice(resumed, "as the run being resumed")
    if device.type != "cpu" or step_seconds is None:
        return CompileChoice(False, "auto: eager off the CPU")
    saved = step_seconds * steps_left * COMPILE_GAIN
    verdict = "pays" if saved > COMPILE_SECONDS else "does not pay"
    return CompileChoice(
        saved > COMPILE_SECONDS,
        f"auto: compiling {verdict} for itself here (saves about {saved:.0f} s of "
        f"{step_seconds * steps_left:.0f} s, costs about {COMPILE_SECONDS:.0f} s)",
    )
