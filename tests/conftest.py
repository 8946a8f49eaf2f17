"""Session-wide real services: one PostgreSQL cluster, two model runtimes and the LiteLLM proxy.

Tests that break a service on purpose (stop Postgres, kill a runtime) start their own copies
with the helpers in procs.py, so they never disturb the shared ones.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from procs import MASTER_KEY, ManagedProcess, PostgresInstance, scaled, start_postgres, start_proxy, start_runtime

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test's time limit (its module's `timeout` mark, else pyproject's) stretches with TEST_TIME_SCALE."""
    default = float(config.getini("timeout") or 600)
    for item in items:
        mark = item.get_closest_marker("timeout")
        seconds = float(mark.args[0]) if mark and mark.args else default
        item.add_marker(pytest.mark.timeout(scaled(seconds)), append=False)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Slow preparations start now, beside the tests before them: each collected module that has a
    `start_in_background()` (tests/compose/test_proxy_image.py: a fresh venv's pip install) gets it called once."""
    if session.config.option.collectonly:
        return
    started: set[str] = set()
    for item in session.items:
        module = getattr(item, "module", None)
        start = getattr(module, "start_in_background", None)
        if module is not None and callable(start) and module.__name__ not in started:
            started.add(module.__name__)
            start()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresInstance]:
    instance = start_postgres()
    yield instance
    instance.remove()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def runtimes(models_dir: Path) -> Iterator[tuple[str, str]]:
    first, first_url = start_runtime(models_dir)
    second, second_url = start_runtime(models_dir)
    yield first_url, second_url
    for process in (first, second):
        process.stop()


@pytest.fixture(scope="session")
def proxy(postgres: PostgresInstance, runtimes: tuple[str, str]) -> Iterator[str]:
    process, base_url = start_proxy(MASTER_KEY, postgres.url("litellm"), *runtimes)
    yield base_url
    process.stop()


@pytest.fixture(scope="session")
def proxy_process_factory() -> Iterator[list[ManagedProcess]]:
    """Collects processes a test module starts itself, so they are stopped even on failure."""
    started: list[ManagedProcess] = []
    yield started
    for process in started:
        process.stop()
