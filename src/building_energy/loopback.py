"""One of the project's servers as a child process on loopback: a free port, a readiness wait, a clean stop.

The benchmark scripts and the end-to-end tests start the real API, dashboard and MLflow UI this way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

LOOPBACK = "127.0.0.1"


class ServerNotReadyError(RuntimeError):
    """The server exited, or did not answer in time, before it was ready."""


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def answers(url: str, body: bytes | None = None) -> bool:
    """Whether a GET of ``url`` gets a 200 (with exactly ``body``, if given); a refused connection is a no."""
    try:
        response = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return False
    return response.status_code == 200 and (body is None or response.content.strip() == body)


def wait_until_ready(
    process: subprocess.Popen[Any],
    ready: Callable[[], bool],
    timeout: float,
    what: str = "the server",
    details: Callable[[], str] = lambda: "",
    poll: float = 0.5,
) -> None:
    """Poll ``ready`` until it holds; raise ``ServerNotReadyError`` with ``details()`` (e.g. the log's tail) if the
    process exits first or ``timeout`` seconds pass. The caller stops the process either way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerNotReadyError(f"{what} exited with {process.returncode}\n{details()}")
        if ready():
            return
        time.sleep(poll)
    raise ServerNotReadyError(f"{what} was not ready after {timeout:.0f} s\n{details()}")


def stop_process(
    process: subprocess.Popen[Any], sig: signal.Signals = signal.SIGINT, timeout: float = 30, group: bool = False
) -> None:
    """Send ``sig`` (to the whole process group if ``group``: a CLI and the server it started), wait up to
    ``timeout`` seconds, then kill."""
    if process.poll() is not None:
        return
    if group:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(timeout=timeout)
