"""A time limit for the model's own code: a forward pass that never returns is stopped.

The limit raises `AnalysisTimeout` in the analyzing thread, from a timer thread, through
CPython's `PyThreadState_SetAsyncExc`: it works in any thread (unlike `signal.alarm`) and takes
effect at the next Python bytecode, so a loop in Python stops at once, and a single long
native call (one huge convolution on real tensors) when it returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Iterator


class AnalysisTimeout(BaseException):
    """The time limit passed. A BaseException, so that a model's `except Exception` (or the
    analyzer's own probing) does not swallow it."""

    where = ""  # the layer the pass was in, set by whoever knows it


def _raise_in_thread(thread_id: int, exception: type[BaseException] | None) -> None:
    # None clears an exception set but not yet raised.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None
    )


class Deadline:
    """`seconds` (None: no limit) from its creation, checked in the `running()` blocks."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        if self.seconds is None:
            yield
            return
        remaining = self.seconds - (time.monotonic() - self.start)
        if remaining <= 0:
            raise AnalysisTimeout
        thread_id = threading.get_ident()
        lock = threading.Lock()
        active = [True]

        def expire() -> None:
            with lock:
                if active[0]:
                    _raise_in_thread(thread_id, AnalysisTimeout)

        timer = threading.Timer(remaining, expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            with lock:
                active[0] = False
                _raise_in_thread(thread_id, None)
            timer.cancel()
