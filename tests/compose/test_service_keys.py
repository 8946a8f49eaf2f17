"""keys-init (deploy/compose/service_keys.py) against a real PostgreSQL, and the settings that read its files.

The script runs here as compose runs it in the proxy image (python SCRIPT KEYS_DIR, the hub installed), with the
services' uids set to this user's so the files can be handed over without root.
"""

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from devstack.config import REPO_ROOT
from hub.keystore import KeyStore, connect
from procs import MASTER_KEY, PostgresInstance

SCRIPT = REPO_ROOT / "deploy" / "compose" / "service_keys.py"


@pytest.fixture
def hub_url(postgres: PostgresInstance) -> str:
    return postgres.new_database("keysinit")


@pytest.fixture
def store(hub_url: str) -> Iterator[KeyStore]:
    with connect(hub_url, 5) as conn:
        yield KeyStore(conn)


def run_init(hub_url: str, keys_dir: Path) -> subprocess.CompletedProcess[str]:
    uid = str(os.getuid())
    env = {
        "PATH": os.environ["PATH"],
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "HUB_DATABASE_URL": hub_url,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "AGENT_HOST_UID": uid,
        "UI_UID": uid,
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(keys_dir)], capture_output=True, text=True, env=env, cwd="/", timeout=60
    )


def _files(keys_dir: Path) -> dict[str, str]:
    return {path.name: path.read_text().strip() for path in sorted(keys_dir.iterdir())}


def _active_service_keys(store: KeyStore) -> dict[str, str]:
    """alias -> prefix of each active service key."""
    now = datetime.now(UTC)
    return {
        listing.record.alias: listing.record.key_prefix
        for listing in store.all_keys()
        if listing.status(now) == "active" and listing.record.is_service
    }


def test_first_run_makes_a_service_key_per_service_each_in_a_file_only_its_owner_reads(
    hub_url: str, store: KeyStore, tmp_path: Path, keys_init: ModuleType
) -> None:
    result = run_init(hub_url, tmp_path / "keys")
    assert result.returncode == 0, result.stderr
    files = _files(tmp_path / "keys")
    assert set(files) == {"agent-host.proxy-key", "ui.proxy-key", "ui.cookie-secret"}
    for name, value in files.items():
        assert stat.S_IMODE((tmp_path / "keys" / name).stat().st_mode) == 0o400, name
        assert value not in result.stdout + result.stderr, f"{name} was printed"
    for wanted in keys_init.service_keys():
        listing = store.get(files[wanted.file])
        assert listing is not None and listing.record.alias == wanted.alias
        assert listing.record.is_service and listing.status(datetime.now(UTC)) == "active"
    assert set(_active_service_keys(store)) == {"agent-host", "chat-ui"}
    assert len(files["ui.cookie-secret"]) >= 40
    assert "created the service key 'agent-host'" in result.stdout


def test_a_second_run_keeps_everything(hub_url: str, store: KeyStore, tmp_path: Path) -> None:
    assert run_init(hub_url, tmp_path).returncode == 0
    before, keys_before = _files(tmp_path), _active_service_keys(store)
    again = run_init(hub_url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert _files(tmp_path) == before
    assert _active_service_keys(store) == keys_before
    assert again.stdout.count("kept") == 3


def test_a_revoked_or_lost_key_is_replaced_and_the_old_one_revoked(
    hub_url: str, store: KeyStore, tmp_path: Path
) -> None:
    assert run_init(hub_url, tmp_path).returncode == 0
    before = _files(tmp_path)
    store.revoke("agent-host")  # an operator revoked it
    (tmp_path / "ui.proxy-key").unlink()  # the volume lost it (its key is still active in the database)
    result = run_init(hub_url, tmp_path)
    assert result.returncode == 0, result.stderr
    after = _files(tmp_path)
    assert after["agent-host.proxy-key"] != before["agent-host.proxy-key"]
    assert after["ui.proxy-key"] != before["ui.proxy-key"]
    assert after["ui.cookie-secret"] == before["ui.cookie-secret"]  # a new one would sign everyone out
    lost = store.get(before["ui.proxy-key"])
    assert lost is not None and lost.record.revoked_at is not None
    assert set(_active_service_keys(store)) == {"agent-host", "chat-ui"}  # one active key per alias
    for key in (after["agent-host.proxy-key"], after["ui.proxy-key"]):
        listing = store.get(key)
        assert listing is not None and listing.status(datetime.now(UTC)) == "active"


def test_an_unreachable_database_fails_the_job_in_one_line(tmp_path: Path) -> None:
    result = run_init("postgresql://litellm:litellm@127.0.0.1:9/litellm", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "cannot reach the hub database" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("AGENT_HOST_PROXY_KEY", "AGENT_HOST_PROXY_KEY_FILE", "LITELLM_API_KEY", "LITELLM_API_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("UI_COOKIE_SECRET", "UI_COOKIE_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENT_HOST_API_KEY", "sk-operator-key")
    return monkeypatch


def test_agent_host_settings_read_the_proxy_key_from_its_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from agent_host.config import Settings

    (tmp_path / "agent-host.proxy-key").write_text("sk-from-the-file\n")
    clean_env.setenv("AGENT_HOST_PROXY_KEY_FILE", str(tmp_path / "agent-host.proxy-key"))
    assert Settings(_env_file=None).agent_host_proxy_key.get_secret_value() == "sk-from-the-file"  # type: ignore[call-arg]
    clean_env.setenv("AGENT_HOST_PROXY_KEY", "sk-from-the-variable")  # the variable wins
    assert Settings(_env_file=None).agent_host_proxy_key.get_secret_value() == "sk-from-the-variable"  # type: ignore[call-arg]


def test_ui_settings_read_the_key_and_cookie_secret_from_their_files(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from chat_ui.config import Settings

    (tmp_path / "ui.proxy-key").write_text("sk-ui-service-key\n")
    (tmp_path / "ui.cookie-secret").write_text("a-long-cookie-secret\n")
    clean_env.setenv("LITELLM_API_KEY_FILE", str(tmp_path / "ui.proxy-key"))
    clean_env.setenv("UI_COOKIE_SECRET_FILE", str(tmp_path / "ui.cookie-secret"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.litellm_api_key.get_secret_value() == "sk-ui-service-key"
    assert settings.ui_cookie_secret is not None
    assert settings.ui_cookie_secret.get_secret_value() == "a-long-cookie-secret"


def test_an_unreadable_key_file_is_named_and_no_secret_is_echoed(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pydantic import ValidationError

    from agent_host.config import Settings

    clean_env.setenv("AGENT_HOST_PROXY_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert f"AGENT_HOST_PROXY_KEY_FILE: cannot read {tmp_path / 'missing'}" in str(caught.value)
    assert "sk-operator-key" not in str(caught.value)
