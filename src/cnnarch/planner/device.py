"""What a CUDA process holds beside the tensors a training step makes, each term named, and the
margin the planner keeps for its own error.

- **CUDA context**: the driver's state and the kernels loaded into it, outside PyTorch's
  allocator. PyTorch loads kernels lazily (`CUDA_MODULE_LOADING=LAZY`, its default since 1.13,
  pytorch/pytorch#86509), so the context grows with the kernels a step first runs; the figures
  here are the context measured right after CUDA starts, per GPU generation, where one was
  found. The kernels a training step loads on top are not in them: the GPU check
  (`benchmarks/check_planner_gpu.py`) measures all of it as total - free - reserved.
- **cuBLAS workspace**: PyTorch gives each cuBLAS handle (one per thread, device and stream) a
  workspace from its caching allocator, kept for the life of the process: 4096 KiB x 2 +
  16 KiB x 8 by default, 4096 KiB x 8 on Hopper (sm90)
  (aten/src/ATen/cuda/CublasHandlePool.cpp, `parseChosenWorkspaceSize`; cuBLASLt shares it,
  `TORCH_CUBLASLT_UNIFIED_WORKSPACE`). A training step uses two handles: the main thread's
  (forward pass, optimizer step) and the autograd engine's device thread's (backward). The
  planner allocates both through its allocator model before the step.
- **cuDNN workspaces**: a convolution's workspace is allocated through the caching allocator
  for the duration of the call, its size chosen by the algorithm. Assumption, from PyTorch's
  source: when that allocation fails, PyTorch tries algorithms needing less, down to none
  (aten/src/ATen/native/cudnn/Conv_v7.cpp `try_all` skips an algorithm whose workspace runs out
  of memory; Conv_v8.cpp halves its workspace limit and drops the plans above it), so a step
  fits when it fits with no workspace, and the planner's default bound is 0 bytes. A cached
  workspace can still fragment the segments it leaves: give a bound (`cudnn_workspace`) to keep
  memory free for it.
- **Margin**: the worst relative error of the planner's allocated-bytes prediction measured so
  far, `MEASURED_ERROR` (`MEASURED_SHARDED_ERROR` for ZeRO-2/3), applied to the predicted peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 2**20

# The worst relative error of the predicted training peak against a measured one, so far on
# the CPU: the profiler's allocation events of a real step, `benchmarks/bench_memory.py` (4
# models x 9 modes at batch 8, torch 2.13 CPU, one thread). The worst cell is vgg16 with
# `checkpoint=4`, predicted 2,076.0 MB against 2,178.9 MB measured (-4.7%); all 36 cells err
# low. PyTorch's own MemTracker errs the same way (-4.9% on that cell). A GPU run replaces this.
MEASURED_ERROR = 0.0473
# The same for ZeRO-2/3 steps, against PyTorch's FSDPMemTracker in the same step (2 gloo
# ranks, the third step, the same benchmark): resnet18 with `zero3`, predicted 322.8 MB
# against 343.8 MB tracked (-6.1%); the profiler counts more there than the tracker
# (docs/planner.md).
MEASURED_SHARDED_ERROR = 0.0610

# cuBLAS workspace per handle, PyTorch's defaults (`parseChosenWorkspaceSize`).
CUBLAS_WORKSPACE = 4096 * 1024 * 2 + 16 * 1024 * 8
CUBLAS_WORKSPACE_SM90 = 4096 * 1024 * 8
# Handles a training step uses: the main thread's and autograd's device thread's.
CUBLAS_HANDLES = 2
# The cuDNN bound's default (see the module's docstring).
CUDNN_WORKSPACE = 0


@dataclass(frozen=True)
class Generation:
    """A GPU generation: its CUDA context as measured (bytes, and where), and PyTorch's cuBLAS
    workspace per handle on it."""

    name: str
    context_bytes: int
    context_source: str
    cublas_workspace_bytes: int


# Bare CUDA contexts measured with lazy loading. No figure was found for Turing or Hopper:
# they take the largest measured on any generation (Ada's).
_ADA_CONTEXT = 426 * MIB
_ADA_SOURCE = (
    "426 MiB on an RTX 6000 Ada after torch.cuda.mem_get_info, PyTorch 2.10 + CUDA 13.0 "
    "(github.com/unslothai/unsloth-zoo/pull/1053)"
)
GENERATIONS = {
    generation.name: generation
    for generation in (
        Generation(
            "turing",
            _ADA_CONTEXT,
            "no Turing figure found: the largest measured, " + _ADA_SOURCE,
            CUBLAS_WORKSPACE,
        ),
        Generation(
            "ampere",
            256 * MIB,
            "256 MiB on an RTX 3090, PyTorch 2.7.1 + CUDA 12.8, before any work "
            "(github.com/invoke-ai/InvokeAI/issues/9413)",
            CUBLAS_WORKSPACE,
        ),
        Generation("ada", _ADA_CONTEXT, _ADA_SOURCE, CUBLAS_WORKSPACE),
        Generation(
            "hopper",
            _ADA_CONTEXT,
            "no Hopper figure found: the largest measured, " + _ADA_SOURCE,
            CUBLAS_WORKSPACE_SM90,
        ),
    )
}
# A budget given in bytes names no card: the largest context and workspace of any generation.
UNKNOWN_GENERATION = Generation(
    "unknown",
    max(g.context_bytes for g in GENERATIONS.values()),
    "no card named: the largest measured, " + _ADA_SOURCE,
    max(g.cublas_workspace_bytes for g in GENERATIONS.values()),
)


def cublas_workspaces(generation: Generation) -> list[int]:
    """The cuBLAS workspaces a training step allocates, in bytes, one per handle."""
    return [generation.cublas_workspace_bytes] * CUBLAS_HANDLES


def margin_bytes(peak_bytes: int, error: float = MEASURED_ERROR) -> int:
    """The margin kept for the prediction's own error at a predicted peak: `error` of it, up."""
    return math.ceil(peak_bytes * error)
