"""A real PostgreSQL server on loopback, for the Optuna studies a cluster shares (``postgresql://`` storages)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from building_energy.loopback import LOOPBACK, ServerNotReadyError, free_port, stop_process, wait_until_ready

USER = "be"  # the server's superuser, trusted on loopback only


def _server_binaries() -> Path:
    """The folder of ``initdb`` and ``postgres``: on the PATH, or where Debian's packages put them."""
    found = shutil.which("postgres")
    if found and shutil.which("initdb"):
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if versions:
        return versions[-1].parent
    pytest.fail("these tests need PostgreSQL's server (initdb, postgres): run `make postgres`")


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; root runs it as the ``postgres`` account the package creates (setpriv
    execs, so signals reach the server itself)."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *command]


def _connects(port: int) -> bool:
    try:
        psycopg.connect(host=LOOPBACK, port=port, user=USER, dbname="postgres", connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@contextlib.contextmanager
def running_postgres() -> Iterator[int]:
    """Start a throwaway server (trust authentication, on loopback, in a temporary folder); yield its port."""
    binaries = _server_binaries()
    folder = Path(tempfile.mkdtemp(prefix="be-postgres-"))
    try:
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("PostgreSQL refuses to run as root and there is no postgres account: run `make postgres`")
            os.chown(folder, account.pw_uid, account.pw_gid)
        data = folder / "data"
        subprocess.run(
            _as_server_user(
                [str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        port = free_port()
        log = folder / "server.log"
        with open(log, "wb") as output:
            # fsync off: a test server's data is thrown away with its folder.
            command = [str(binaries / "postgres"), "-D", str(data), "-h", LOOPBACK, "-p", str(port), "-k", str(folder)]
            server = subprocess.Popen(
                _as_server_user([*command, "-c", "fsync=off"]),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until_ready(
                server, lambda: _connects(port), timeout=60, what="postgres", details=lambda: log.read_text()[-2000:]
            )
            yield port
        except ServerNotReadyError as error:
            pytest.fail(str(error))
        finally:
            stop_process(server)  # SIGINT: PostgreSQL's fast shutdown
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def create_database(port: int, name: str) -> str:
    """A new empty database on the server; its SQLAlchemy URL."""
    with psycopg.connect(host=LOOPBACK, port=port, user=USER, dbname="postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://{USER}@{LOOPBACK}:{port}/{name}"
