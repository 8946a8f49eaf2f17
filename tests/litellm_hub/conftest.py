"""Fixtures for the hub tests; the helpers live in hub_support.py."""

from collections.abc import Iterator

import httpx
import pytest

from procs import PostgresInstance


@pytest.fixture(scope="session")
def database_url(postgres: PostgresInstance) -> str:
    return postgres.url("litellm")


@pytest.fixture
def client(proxy: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy, timeout=120) as http:
        yield http
