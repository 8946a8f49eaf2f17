"""The UI's tests: a scripted fake model server, and the real PostgreSQL from the session fixture."""

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fake_model_server import FakeModelServer

from chat_ui.config import get_settings
from chat_ui.store import HistoryStore
from procs import PostgresInstance


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeModelServer]:
    server = FakeModelServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ui_env(
    fake_model: FakeModelServer, postgres: PostgresInstance, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FakeModelServer]:
    """The UI pointed at the fake model and the real `genailabs` database, with an empty history."""
    fake_model.reset()
    monkeypatch.chdir(tmp_path)  # no streamlit_service/.env from a developer's machine leaks in
    monkeypatch.setenv("LITELLM_BASE_URL", f"{fake_model.url}/v1")
    monkeypatch.setenv("LITELLM_API_KEY", "sk-ui-test-key-0123456789")
    monkeypatch.setenv("DATABASE_URL", postgres.url("genailabs"))
    monkeypatch.setenv("HUB_DATABASE_URL", postgres.url("litellm"))
    monkeypatch.setenv("RUNTIME_URLS", fake_model.url)
    monkeypatch.setenv("AGENT_HOST_URL", "")
    get_settings.cache_clear()
    HistoryStore(postgres.url("genailabs")).ping()  # creates the schema
    with psycopg.connect(postgres.url("genailabs")) as conn:
        conn.execute("TRUNCATE ui_conversations RESTART IDENTITY CASCADE")
    yield fake_model
    get_settings.cache_clear()
