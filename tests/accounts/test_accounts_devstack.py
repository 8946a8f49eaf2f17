"""`make up`'s part in accounts: the UI's and host's service keys, the UI's secrets, the first admin's password."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from devstack.config import StackSettings
from devstack.hostkeys import create_keys, hub_keys, mark_service
from devstack.people import ensure_people
from devstack.services import plan, secret_env
from devstack.supervisor import render_config
from devstack.uikeys import create_ui_keys, load_ui_keys, ui_keys_path
from genailabs_accounts.store import AccountStore
from procs import PostgresInstance, start_postgres

MASTER_KEY = "sk-devstack-accounts-master"


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresInstance]:
    """A private server: `up` works on the databases named litellm and genailabs, which other tests share."""
    instance = start_postgres()
    yield instance
    instance.remove()


def _settings(server: PostgresInstance, stack_dir: Path, **extra: Any) -> StackSettings:
    return StackSettings(
        stack_dir=stack_dir, litellm_master_key=MASTER_KEY, database_url=server.url("litellm"), **extra
    )


def _hub_key(server: PostgresInstance, alias: str) -> dict[str, Any] | None:
    with psycopg.connect(server.url("litellm"), row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM hub_keys WHERE alias = %s AND revoked_at IS NULL", (alias,)).fetchone()


def test_the_ui_gets_its_own_service_key_and_a_cookie_secret_kept_0600(
    server: PostgresInstance, tmp_path: Path
) -> None:
    settings = _settings(server, tmp_path)
    assert load_ui_keys(settings) is None
    keys = create_ui_keys(settings)
    assert ui_keys_path(settings).stat().st_mode & 0o777 == 0o600
    assert keys["LITELLM_API_KEY"].startswith("sk-") and keys["LITELLM_API_KEY"] != MASTER_KEY
    assert len(keys["UI_COOKIE_SECRET"]) >= 32
    row = _hub_key(server, "chat-ui")
    assert row is not None and row["metadata"] == {"service": True}
    assert load_ui_keys(settings) == keys
    # A lost service key is made again; the cookie secret stays, so nobody is signed out.
    ui_keys_path(settings).write_text(json.dumps({"UI_COOKIE_SECRET": keys["UI_COOKIE_SECRET"]}))
    again = create_ui_keys(settings)
    assert again["UI_COOKIE_SECRET"] == keys["UI_COOKIE_SECRET"]
    assert again["LITELLM_API_KEY"] != keys["LITELLM_API_KEY"]


def test_the_agent_host_key_is_a_service_key_and_an_older_one_is_marked(
    server: PostgresInstance, tmp_path: Path
) -> None:
    settings = _settings(server, tmp_path)
    create_keys(settings)
    row = _hub_key(server, "agent-host")
    assert row is not None and row["metadata"] == {"service": True}
    assert hub_keys(settings, "create", "--alias", "older-host").returncode == 0  # as stacks made before
    mark_service(settings, "older-host")
    mark_service(settings, "older-host")  # every `up` does it: idempotent
    older = _hub_key(server, "older-host")
    assert older is not None and older["metadata"] == {"service": True}


def test_the_programs_get_the_ui_secrets_through_the_environment_only(server: PostgresInstance, tmp_path: Path) -> None:
    settings = _settings(server, tmp_path, session_idle_minutes=45)
    create_keys(settings)
    keys = create_ui_keys(settings)
    env = secret_env(settings)
    assert env["LITELLM_API_KEY"] == keys["LITELLM_API_KEY"] != MASTER_KEY
    assert env["UI_COOKIE_SECRET"] == keys["UI_COOKIE_SECRET"]
    assert env["HUB_DATABASE_URL"] == settings.database_url
    programs = {service.name: service.program for service in plan(settings, lambda name: True)}
    config = render_config(settings, [program for program in programs.values() if program is not None])
    for secret in (*keys.values(), MASTER_KEY):
        assert secret not in config
    ui, host = programs["ui"], programs["agent_host"]
    assert ui is not None and host is not None
    assert ui.argv[1] == "run" and ui.argv[2].endswith("streamlit_service/app.py")
    assert "--server.port" in ui.argv and "--browser.gatherUsageStats" in ui.argv
    for program in (ui, host):
        assert program.environment["SESSION_IDLE_MINUTES"] == "45"
        assert program.environment["LITELLM_MASTER_KEY"] == ""  # only the proxy holds it


def test_up_prints_a_generated_admin_password_once(server: PostgresInstance, tmp_path: Path) -> None:
    settings = _settings(server, tmp_path, admin_login="boss")
    notice = ensure_people(settings)
    assert notice is not None and "first admin account: boss" in notice
    password = notice.split("one-time password: ", 1)[1].split()[0]
    assert ensure_people(settings) is None  # never again
    store = AccountStore(server.url("genailabs"), server.url("litellm"))
    try:
        assert store.sign_in("boss", password).account.role == "admin"
    finally:
        store.close()
    assert not any(password in path.read_text(errors="replace") for path in tmp_path.rglob("*") if path.is_file())


def test_up_takes_admin_password_from_the_environment(tmp_path: Path) -> None:
    instance = start_postgres()  # a first start: no admin yet
    try:
        with pytest.raises(RuntimeError, match="at least 8"):
            ensure_people(_settings(instance, tmp_path, admin_password="short"))
        settings = _settings(instance, tmp_path, admin_password="from the environment")
        assert ensure_people(settings) == "first admin account: admin (password from ADMIN_PASSWORD)"
        assert ensure_people(settings) is None
        store = AccountStore(instance.url("genailabs"), instance.url("litellm"))
        try:
            assert store.sign_in("admin", "from the environment").account.role == "admin"
        finally:
            store.close()
    finally:
        instance.remove()
