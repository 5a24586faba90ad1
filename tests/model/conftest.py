"""A real PostgreSQL server for the tuning tests' cluster storage, started once per session on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.postgres import create_database, running_postgres

_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_port() -> Iterator[int]:
    with running_postgres() as port:
        yield port


@pytest.fixture
def postgres_url(postgres_port: int) -> str:
    """A fresh database for the test, so studies of one name do not meet across tests."""
    return create_database(postgres_port, f"t{next(_numbers)}")
