"""A time limit for the model's own code: a forward pass that never returns is stopped.

With a limit, the work runs in a worker thread and the calling thread waits. Past the limit,
the worker is asked to stop: `AnalysisTimeout` is raised in it at its next Python bytecode
(`torch_internals.raise_in_thread`), so a loop in Python stops at once and unwinds, and the
error can name the layer it was in (not in the middle of an import, which it would leave half
done: the stop waits for the import to end, within `UNWIND_SECONDS`). A worker blocked in
native code (`time.sleep`, a lock, an `Event().wait()`, one huge kernel) runs no bytecode:
after `UNWIND_SECONDS` more, the caller gives up on it, undoes what it changed itself
(`abandon`) and raises. The abandoned thread (a daemon) goes on until its native call
returns, then stops at once; until then it holds whatever that call holds. That is the cost
of a limit that always holds; without a limit (`seconds=None`) the work runs in the calling
thread and costs nothing extra.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from cnnarch.analysis.torch_internals import raise_in_thread, thread_is_importing

T = TypeVar("T")

# How long a stopped worker gets to unwind (its cleanup included) before it is abandoned.
UNWIND_SECONDS = 1.0


class AnalysisTimeout(BaseException):
    """The time limit passed. A BaseException, so that a model's `except Exception` (or the
    analyzer's own probing) does not swallow it."""

    where = ""  # the layer the pass was in, set by whoever knows it
    blocked = False  # the worker was blocked in native code and left behind


class _Worker(Generic[T]):
    """`work()` in a daemon thread, with its outcome, and a stop that never reaches the thread
    once it is done."""

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.value: T | None = None
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.finished = False
        self.thread = threading.Thread(target=self._run, name="cnnarch-analysis", daemon=True)

    def _run(self) -> None:
        try:
            try:
                self.value = self.work()
            except BaseException as err:  # handed to the waiting thread, which raises it
                self.error = err
            finally:
                with self.lock:
                    self.finished = True
        except AnalysisTimeout:  # a stop that arrived as the work was ending: nothing to do
            pass

    def stop(self) -> None:
        with self.lock:
            if not self.finished and self.thread.ident is not None:
                raise_in_thread(self.thread.ident, AnalysisTimeout)

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def run_with_time_limit(
    work: Callable[[], T], seconds: float | None, abandon: Callable[[], str]
) -> T:
    """`work()`, stopped with `AnalysisTimeout` after `seconds` (None: no limit).

    Args:
        work: what to run; it must undo its own changes when `AnalysisTimeout` unwinds it.
        seconds: the time limit, or None to run `work` here, without a thread.
        abandon: called in this thread when the worker is blocked in native code and cannot
            be stopped: it undoes what the worker changed (the worker's own cleanup will
            come only when its native call returns) and returns where the worker was, which
            the error's `where` then says.
    """
    if seconds is None:
        return work()
    worker = _Worker(work)
    worker.thread.start()
    try:
        worker.thread.join(seconds)
    except BaseException:  # Ctrl-C while waiting: stop the worker too
        if not _stopped(worker):
            abandon()
        raise
    if worker.thread.is_alive() and not _stopped(worker):
        timeout = AnalysisTimeout()
        timeout.blocked = True
        timeout.where = abandon()
        raise timeout
    return worker.outcome()


def _stopped(worker: _Worker[T]) -> bool:
    """Stop the worker; whether it unwound within `UNWIND_SECONDS`."""
    end = time.monotonic() + UNWIND_SECONDS
    ident = worker.thread.ident
    while ident is not None and thread_is_importing(ident) and time.monotonic() < end:
        worker.thread.join(0.02)
    worker.stop()
    worker.thread.join(max(0.0, end - time.monotonic()))
    return not worker.thread.is_alive()
