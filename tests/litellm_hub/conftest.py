"""Fixtures for the hub tests; the helpers live in hub_support.py."""

from collections.abc import Iterator

import httpx
import pytest
from hub_support import CACHE_TTL, INPUT_COST, OUTPUT_COST, priced_config, start_hub_proxy

from procs import ManagedProcess, PostgresInstance


@pytest.fixture(scope="session")
def database_url(postgres: PostgresInstance) -> str:
    return postgres.url("litellm")


@pytest.fixture
def client(proxy: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy, timeout=120) as http:
        yield http


@pytest.fixture(scope="package")
def priced_proxy(
    database_url: str, runtimes: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One proxy for the key-limit and people tests: every test makes keys of its own."""
    config = priced_config(tmp_path_factory.mktemp("priced"), INPUT_COST, OUTPUT_COST)
    process: ManagedProcess
    process, base_url = start_hub_proxy(database_url, *runtimes, config=config, HUB_KEY_CACHE_TTL=str(CACHE_TTL))
    yield base_url
    process.stop()


@pytest.fixture
def http(priced_proxy: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=priced_proxy, timeout=120) as client:
        yield client
