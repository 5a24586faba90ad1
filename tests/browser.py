"""A real headless Chromium driven over the DevTools protocol on a pipe (stdlib only, no port, no network).

Streamlit renders in the browser after a websocket round trip, so a one-shot ``--dump-dom`` sees only the
skeleton; this waits for what the page must show, then reads the DOM and takes a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any, Self

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """Chromium died, answered with an error, or a page never showed what was awaited."""


class Chromium:
    """One headless Chromium process and one page in it."""

    def __init__(
        self,
        profile_dir: Path,
        window: tuple[int, int] = (1400, 1000),
        stderr: Any = subprocess.DEVNULL,
        extra_flags: tuple[str, ...] = (),
    ) -> None:
        if not CHROMIUM.is_file():
            raise BrowserError(f"{CHROMIUM} not found: install Debian's chromium (`apt-get install -y chromium`)")
        # Chromium reads commands on fd 3 and writes answers on fd 4, each message ending in a NUL byte.
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def _wire_pipes() -> None:
            # Move both ends out of the way first: either may already sit on fd 3 or 4.
            read_end = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        command = [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile_dir}",
            f"--window-size={window[0]},{window[1]}",
            *extra_flags,
        ]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=_wire_pipes,  # noqa: PLW1509 (only dup2 before exec)
            close_fds=False,
            start_new_session=True,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        # The page's events (``Network.requestWillBeSent``...) read while waiting for answers, in order.
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=20)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("no answer from Chromium in time")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed the pipe (exit code {self._process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Send one DevTools command (to the page once one is open) and return its result."""
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            request["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if "method" in message:
                self.events.append(message)
                continue
            if message.get("id") != self._next_id:
                continue  # the answer to an earlier command
            if "error" in message:
                raise BrowserError(f"{method}: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result

    def open(self, url: str) -> None:
        """Open ``url`` in a new page and direct the following commands to it."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable")
        self.call("Network.enable")
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, poll: float = 0.5) -> Any:
        """Poll a JavaScript expression until it is truthy; raise with the last value if it never is."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(poll)
        raise BrowserError(f"{expression!r} still {value!r} after {timeout} s")

    def requested_urls(self) -> list[str]:
        """Every URL the open pages asked the network for so far (scripts, styles, images, fetches), those
        that failed included; not the ones the browser refused to send (a Content-Security-Policy, say)."""
        blocked = {
            event["params"]["requestId"]
            for event in self.events
            if event["method"] == "Network.loadingFailed" and event["params"].get("blockedReason")
        }
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event["method"] == "Network.requestWillBeSent" and event["params"]["requestId"] not in blocked
        ]

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
