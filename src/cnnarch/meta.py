"""Shape inference on the meta device, for any `nn.Module`: a copy of a module that holds no
weights, and the smallest input it accepts.

The zoo (its cards' smallest input, its models' input errors) and the analyzer (its error
messages) both use these, and neither may import the other; so, like `cnnarch.errors`, this
module sits below both. Of cnnarch it imports only the door to PyTorch's private names
(`cnnarch.analysis.torch_internals`, which imports nothing of cnnarch).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy

from cnnarch.analysis.torch_internals import drop_forward_hooks, modes_suspended

ModuleT = TypeVar("ModuleT", bound=nn.Module)

# The largest square side the size search tries, and the first.
SEARCH_LIMIT = 4096
SEARCH_START = 8


def meta_copy(module: ModuleT, *, drop_hooks: bool) -> ModuleT:
    """A deep copy of `module` whose parameters and buffers are empty meta tensors of the same
    shapes, dtypes and strides (lazy ones stay uninitialized, on meta): `deepcopy` is handed a
    stand-in for each tensor, so no weight is copied and nothing is allocated.

    Args:
        module: any module, on any device.
        drop_hooks: remove the copy's forward hooks and pre-hooks (and any per-instance
            override of its call, such as the analyzer's fast path), so that the copy runs
            its classes' code alone and a user's hooks do not see what it runs. Keep them for
            a copy whose lazy modules must still size themselves (they do it in a forward
            pre-hook).
    """
    memo: dict[int, torch.Tensor] = {}
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if id(tensor) in memo:
            continue
        if is_lazy(tensor):
            is_param = isinstance(tensor, nn.Parameter)
            lazy = UninitializedParameter if is_param else UninitializedBuffer
            memo[id(tensor)] = lazy(
                requires_grad=tensor.requires_grad, device="meta", dtype=tensor.dtype
            )
        elif isinstance(tensor, nn.Parameter):
            empty = torch.empty_like(tensor, device="meta")
            memo[id(tensor)] = nn.Parameter(empty, tensor.requires_grad)
        else:
            memo[id(tensor)] = torch.empty_like(tensor, device="meta")
    twin = copy.deepcopy(module, memo)
    if drop_hooks:
        for submodule in twin.modules():
            drop_forward_hooks(submodule)
    return twin


def bisect_smallest_side(
    accepts: Callable[[int], bool], start: int = SEARCH_START, limit: int = SEARCH_LIMIT
) -> int | None:
    """Smallest side for which `accepts(side)` holds, assuming every larger side is accepted
    too; None if no side up to `limit` is.

    Args:
        accepts: whether an input of this side works.
        start: the first side tried (doubled until one is accepted).
        limit: the largest side tried.
    """
    hi = start
    while not accepts(hi):
        hi *= 2
        if hi > limit:
            return None
    lo = 0  # largest side known (or assumed) to fail
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if accepts(mid):
            hi = mid
        else:
            lo = mid
    return hi


_search = threading.local()


@contextlib.contextmanager
def _searching() -> Iterator[None]:
    outer = getattr(_search, "running", False)
    _search.running = True
    try:
        yield
    finally:
        _search.running = outer


def size_search_running() -> bool:
    """Whether this thread is inside `smallest_square_side`: a model that explains its own
    errors with the smallest input it accepts must not start a search of its own meanwhile."""
    return getattr(_search, "running", False)


def accepts(model: nn.Module, inputs: Sequence[torch.Tensor]) -> bool:
    """Whether `model(*inputs)` runs on meta tensors: any exception is a no.

    Args:
        model: a module whose parameters and buffers are on meta (see `meta_copy`).
        inputs: its positional inputs, meta tensors.
    """
    try:
        with torch.no_grad(), torch.device("meta"):
            model(*inputs)
    except Exception:  # whatever the model raises, this input does not work
        return False
    return True


def smallest_square_side(
    model: nn.Module,
    channels: int,
    *,
    batch: int = 2,
    dtype: torch.dtype | None = None,
    start: int = SEARCH_START,
    limit: int = SEARCH_LIMIT,
    within: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> int | None:
    """The smallest square side of a (batch, channels, side, side) input that `model` accepts,
    by bisection on meta; None if no side up to `limit` is. The model runs in its own
    train/eval mode, outside any `__torch_function__` or `__torch_dispatch__` mode active
    around the call (a search started inside a traced forward is not the model's code).

    Args:
        model: a module on meta (see `meta_copy`).
        channels: the input's channels.
        batch: the input's batch; 2 by default, as batch norm in training mode needs more
            than one value per channel.
        dtype: the input's dtype (default: torch's default dtype).
        start: the first side tried.
        limit: the largest side tried.
        within: the context the search runs in (the analyzer's faster meta kernels).
    """

    def works(side: int) -> bool:
        x = torch.empty(batch, channels, side, side, dtype=dtype, device="meta")
        return accepts(model, (x,))

    with _searching(), modes_suspended(), within():
        return bisect_smallest_side(works, start, limit)
