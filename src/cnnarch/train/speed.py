"""How a run computes its steps fastest: eagerly or through `torch.compile`.

`torch.compile` makes each CPU training step faster but first costs minutes of compiling
(TorchInductor generates and builds C++ kernels; a later run of the same model finds most of
them in its on-disk cache). `compile="auto"` compiles when the time it is expected to save within
the run exceeds the time it is expected to cost: the eager step time is measured at the start
(the thread probe's steps), the share of it that compiling saves and the compile time per layer
are those `benchmarks/bench_train.py` measured (below). On a GPU, where cnnarch has measured
neither, "auto" trains eagerly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Measured with `python benchmarks/bench_train.py` on 2 cores of an AMD EPYC (Zen 4), one thread,
# ResNet-20/56 and plain-20/56 on Fashion-MNIST at batch 32 and 128 (docs/training.md): the share
# of the step time that compiling saves over the same memory layout trained eagerly, keyed by
# `channels_last` (compiled/eager in CPU time: 1.18-1.40x in NCHW, median 1.3; 1.01-1.13x in
# channels_last, median 1.06)...
COMPILE_SAVES = {False: 0.2, True: 0.05}
# ...and a first compile's seconds per module with parameters, with a cold cache on the loaded
# machine (ResNet-56, 111 such modules: 99-332 s; ResNet-20, 39: 148-216 s).
COMPILE_SECONDS_PER_LAYER = 3.0


@dataclass(frozen=True)
class CompileChoice:
    """Whether a run trains through `torch.compile`, and why (for the log)."""

    compiled: bool
    why: str


def compile_seconds(layers: int) -> float:
    """The expected time of a first compile of a model with `layers` modules with parameters."""
    return layers * COMPILE_SECONDS_PER_LAYER


def choose_compile(
    setting: str,
    device: torch.device,
    step_seconds: float | None,
    steps_left: int,
    layers: int,
    channels_last: bool,
    resumed: bool | None = None,
) -> CompileChoice:
    """Compile or not, for `setting` ("on", "off", "auto").

    Args:
        setting: the config's `compile`.
        device: the training device.
        step_seconds: the measured seconds of one eager step, or None when not measured.
        steps_left: the optimizer steps the run has still to do.
        layers: the model's modules with parameters (the compile time grows with them).
        channels_last: whether the run trains in channels_last (compiling saves less then).
        resumed: what the checkpoint being resumed chose (its numbers depend on it), or None.
    """
    if setting != "auto":
        return CompileChoice(setting == "on", f"compile={setting}")
    if resumed is not None:
        return CompileChoice(
            resumed,
            "compiled as the run being resumed" if resumed else "eager as the run being resumed",
        )
    if device.type != "cpu" or step_seconds is None:
        return CompileChoice(False, "eager (compile=auto compiles on the CPU only)")
    eager = step_seconds * steps_left
    saved, cost = eager * COMPILE_SAVES[channels_last], compile_seconds(layers)
    verdict = "compiled: it pays" if saved > cost else "eager: compiling does not pay"
    return CompileChoice(
        saved > cost,
        f"{verdict} for itself here (it would save about {saved:.0f} s of {eager:.0f} s and "
        f"cost about {cost:.0f} s; --compile on|off decides)",
    )
