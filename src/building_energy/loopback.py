"""One of the project's servers as a child process on loopback: a free port, a readiness wait, a clean stop.

The benchmark scripts and the end-to-end tests start the real API, dashboard and MLflow UI this way; the
``serve`` and ``ui`` commands check their port with ``check_port_free`` before they start a server.
"""

from __future__ import annotations

import contextlib
import errno
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


class PortUnavailableError(OSError):
    """A server could not listen on its address: the port is taken, or the host is not this machine's."""


def check_port_free(host: str, port: int) -> None:
    """Raise ``PortUnavailableError``, one line naming ``host:port``, if a server could not listen there now.

    It binds as uvicorn does (``SO_REUSEADDR``: a port whose last connections linger in TIME_WAIT is free) to
    every address ``host`` resolves to, then lets go. A check, not a reservation: another process may still
    take the port before the server binds it, but a port already in use is reported before anything starts.
    """
    where = f"{host}:{port}"
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise PortUnavailableError(f"cannot listen on {where}: {error.strerror}") from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio's servers: "::" does not also claim the IPv4 port
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise PortUnavailableError(
                        f"cannot listen on {where}: the port is already in use; stop what listens there or "
                        "choose another --port"
                    ) from None
                if error.errno == errno.EADDRNOTAVAIL and len(addresses) > 1:
                    continue  # e.g. localhost's ::1 with IPv6 disabled: the server skips it too
                raise PortUnavailableError(f"cannot listen on {where}: {error.strerror}") from None


def group_exists(group: int) -> bool:
    """Whether any process (a zombie not yet reaped included) is left in process group ``group``."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal is still a member
        return True
    return True


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
    ``timeout`` seconds, then kill.

    With ``group`` (``process`` started with ``start_new_session=True``), whatever is left of the group is
    stopped even when ``process`` itself has exited: a server's own children (MLflow's job runner) outlive it
    otherwise, re-parented to init. It returns once the whole group is gone, or has been killed.
    """
    if not group:
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:  # the whole group is gone already
        process.poll()
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    while group_exists(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if group_exists(process.pid):
        with contextlib.suppress(ProcessLookupError):  # its last member may have just exited
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
