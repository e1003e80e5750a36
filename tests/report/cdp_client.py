"""A small Chrome DevTools Protocol client over `--remote-debugging-pipe` (standard library only).

Chromium reads JSON commands from its fd 3 and writes replies and events to its fd 4, each
message ended by a NUL byte. That is all this module speaks: enough to load a page, collect its
console errors, uncaught exceptions and failed loads, evaluate JavaScript and take a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageProblems:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)


class Browser:
    """A headless Chromium with one page; use as a context manager."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="cnnarch-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # runs in the child before exec
            # Move both ends clear of 3 and 4 first: os.pipe() may have returned 3 or 4 itself.
            high_r, high_w = (
                fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10),
                fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10),
            )
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self._process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            close_fds=False,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._events: list[dict[str, Any]] = []
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        self.session = self._attach()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_child, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for message in messages:
                    self._inbox.put(json.loads(message))
        self._inbox.put(None)

    def send(self, method: str, params: dict[str, Any] | None = None, session: bool = True) -> Any:
        """Send a command and wait for its result, keeping every event that arrives meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._take()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        for event in self._events:
            if event.get("method") == method:
                return event
        while True:
            event = self._take()
            self._events.append(event)
            if event.get("method") == method:
                return event

    def _take(self) -> dict[str, Any]:
        try:
            message = self._inbox.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer from Chromium within {self.timeout} s") from None
        if message is None:
            raise RuntimeError("Chromium closed the DevTools pipe")
        return message

    def _attach(self) -> str:
        self.session = ""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, False
        )
        return attached["sessionId"]

    def load(self, path: Path, width: int = 1280, height: int = 900) -> None:
        """Open `path` and wait for its load event (all images decoded or failed)."""
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self._events.clear()
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.wait_for("Page.loadEventFired")

    def problems(self) -> PageProblems:
        self.evaluate("1")  # flush events queued before this point
        found = PageProblems()
        for event in self._events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.exceptions.append(details.get("exception", {}).get("description", details))
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.console_errors.append(" ".join(str(a.get("value")) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.console_errors.append(params["entry"]["text"])
            elif method == "Network.loadingFailed":
                found.failed_loads.append(params.get("errorText", "?"))
        return found

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, full_page: bool = False) -> bytes:
        params = {"format": "png", "captureBeyondViewport": full_page}
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", session=False)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_child)
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
