"""The UI's tests: a scripted fake model server, the real PostgreSQL from the session fixture, and a signed-in
admin (`person`) for the pages: AppTest cannot send a cookie, so a test puts it in the page's session state
(`app.session_state["person"] = person`), where the gate (chat_ui.auth.require_person) resolves it again."""

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fake_model_server import FakeModelServer

from chat_ui.config import get_settings
from chat_ui.people import SignedIn
from genailabs_accounts.migrations import migrate
from genailabs_accounts.store import AccountStore
from procs import UI_ADMIN_LOGIN, UI_PASSWORD, PostgresInstance, ensure_account


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeModelServer]:
    server = FakeModelServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def account_store(postgres: PostgresInstance) -> Iterator[AccountStore]:
    """The session database's accounts (the UI's settings point at the same `genailabs` and `litellm`)."""
    store = AccountStore(postgres.url("genailabs"), postgres.url("litellm"))
    yield store
    store.close()


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
    with psycopg.connect(postgres.url("genailabs"), autocommit=True) as conn:
        migrate(conn)
        conn.execute("TRUNCATE ui_conversations RESTART IDENTITY CASCADE")
    yield fake_model
    get_settings.cache_clear()


@pytest.fixture
def person(ui_env: FakeModelServer, postgres: PostgresInstance, account_store: AccountStore) -> SignedIn:
    """An admin signed in (a real sign-in session), for `app.session_state["person"]`."""
    ensure_account(postgres.url("genailabs"), postgres.url("litellm"), UI_ADMIN_LOGIN)
    signed = account_store.sign_in(UI_ADMIN_LOGIN, UI_PASSWORD)
    return SignedIn(account=signed.account, token=signed.token)
