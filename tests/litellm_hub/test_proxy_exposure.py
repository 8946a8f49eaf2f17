"""A proxy reachable from other machines refuses to start with a secret copied from .env.example."""

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from devstack.config import REPO_ROOT
from devstack.probe import free_port
from hub.config import HubSettings
from hub.exposure import exposure_problem, is_loopback, served_address
from procs import BIN_DIR, MASTER_KEY, scaled


def _settings(master_key: str = MASTER_KEY, password: str = "s3cret-Pw") -> HubSettings:
    return HubSettings(
        litellm_master_key=SecretStr(master_key),
        hub_database_url=SecretStr(f"postgresql://litellm:{password}@db:5432/litellm"),
    )


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.10", "proxy.example.com"])
def test_addresses_others_reach(address: str) -> None:
    assert not is_loopback(address)


def test_the_published_address_decides_over_the_container_bind_host() -> None:
    litellm = [str(BIN_DIR / "litellm"), "--config", "c.yaml"]
    assert served_address("", litellm, {}) == "0.0.0.0"  # LiteLLM's own default
    assert served_address("", litellm, {"HOST": "10.0.0.6"}) == "10.0.0.6"  # its --host's variable
    assert served_address("", [*litellm, "--host", "127.0.0.1"], {}) == "127.0.0.1"
    assert served_address("", [*litellm, "--host=10.0.0.5"], {}) == "10.0.0.5"
    assert served_address("127.0.0.1", [*litellm, "--host", "0.0.0.0"], {}) == "127.0.0.1"  # published there
    assert served_address("", ["pytest"], {}) is None  # not the proxy: the CLI and tests never refuse


def test_each_example_secret_is_named_and_never_shown() -> None:
    assert exposure_problem(_settings(), "0.0.0.0") is None
    assert exposure_problem(_settings("sk-litellm-hub-local-123", "litellm"), "127.0.0.1") is None
    problem = exposure_problem(_settings("sk-litellm-hub-local-123", "litellm"), "0.0.0.0")
    assert problem is not None and "LITELLM_MASTER_KEY, HUB_DATABASE_URL" in problem
    assert "sk-litellm-hub-local-123" not in problem and ":litellm@" not in problem
    assert "HUB_DATABASE_URL" not in (exposure_problem(_settings("sk-litellm-hub-local-123"), "::") or "")


def test_the_proxy_on_all_interfaces_with_the_example_master_key_exits_with_one_line() -> None:
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": "sk-litellm-hub-local-123",
        # It stops before using the database: none needs to run.
        "HUB_DATABASE_URL": "postgresql://litellm:not-the-example@127.0.0.1:9/litellm",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HUB_SPOOL_DIR": tempfile.mkdtemp(prefix="hub-test-spool-"),
        "OLLAMA_BASE_URL": "http://127.0.0.1:9",
        "RUNTIME2_BASE_URL": "http://127.0.0.1:9",
    }
    env.pop("DATABASE_URL", None)
    env.pop("PUBLISHED_ADDRESS", None)
    port = free_port()
    config = Path(REPO_ROOT / "litellm_hub" / "litellm_config.yaml")
    started = time.monotonic()
    result = subprocess.run(
        [str(BIN_DIR / "litellm"), "--config", str(config), "--host", "0.0.0.0", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(180),
    )
    assert result.returncode != 0, result.stdout[-2000:] + result.stderr[-2000:]
    refusals = [line for line in result.stderr.splitlines() if "refusing" in line]
    assert refusals == [
        "hub: refusing to serve on 0.0.0.0 with the example value of LITELLM_MASTER_KEY from .env.example: "
        "set a secret of your own, or bind to 127.0.0.1"
    ], result.stderr[-2000:]
    assert "sk-litellm-hub-local-123" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    print(f"proxy refused in {time.monotonic() - started:.1f}s")


def test_compose_tells_the_hub_its_published_address_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISHED_ADDRESS", "192.168.10.20")
    assert _settings().published_address == "192.168.10.20"
