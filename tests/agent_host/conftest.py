"""One agent host for the module's tests, on the shared proxy and Postgres."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from host_support import HOST_KEY, PEOPLE_ADMIN_KEY, shared_master_key, start_host
from openai import OpenAI

from agent_host.sessions.store import open_pool
from procs import ManagedProcess, PostgresInstance


@pytest.fixture(scope="session")
def host_process(proxy: str, postgres: PostgresInstance) -> Iterator[tuple[ManagedProcess, str]]:
    process, url = start_host(proxy, postgres.url("genailabs"), shared_master_key())
    yield process, url
    process.stop()


@pytest.fixture(scope="session")
def people_host_process(proxy: str, postgres: PostgresInstance) -> Iterator[tuple[ManagedProcess, str]]:
    """A host for the people tests: an operator admin key, a login locked after 5 failures, and a 512-token
    window for smollm2 (so a few turns of a session get a running summary)."""
    env = {
        "AGENT_HOST_ADMIN_KEY": PEOPLE_ADMIN_KEY,
        "LOGIN_MAX_FAILURES": "5",
        "LOGIN_LOCK_MINUTES": "1",
        "CONTEXT_WINDOWS": '{"smollm2:135m": 512}',
        "RECENT_MESSAGES": "2",
        "SUMMARY_TOKENS": "48",
    }
    process, url = start_host(proxy, postgres.url("genailabs"), shared_master_key(), **env)
    yield process, url
    process.stop()


@pytest.fixture(scope="session")
def people_host(people_host_process: tuple[ManagedProcess, str]) -> str:
    return people_host_process[1]


@pytest.fixture(scope="session")
def host(host_process: tuple[ManagedProcess, str]) -> str:
    return host_process[1]


@pytest.fixture(scope="session")
def sdk(host: str) -> OpenAI:
    return OpenAI(base_url=f"{host}/v1", api_key=HOST_KEY, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
async def pool(postgres: PostgresInstance) -> AsyncIterator[Any]:
    """A connection pool on the session's genailabs database, for tests that build services in-process."""
    pool = await open_pool(postgres.url("genailabs"), 5.0)
    await pool.wait(timeout=10)
    yield pool
    await pool.close()
