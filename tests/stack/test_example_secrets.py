"""The agent host and the UI refuse to serve beyond loopback with a secret copied from .env.example."""

import os
import subprocess
import sys

import pytest

import agent_host.__main__ as agent_host_main
from chat_ui import exposure as ui_exposure
from devstack.config import REPO_ROOT
from devstack.probe import free_port
from hub import exposure as hub_exposure
from procs import scaled

EXAMPLE_HOST_KEY = "change-me-agent-host-key"
EXAMPLE_FILES = [
    REPO_ROOT / ".env.example",
    REPO_ROOT / "litellm_hub" / ".env.example",
    REPO_ROOT / "agent_host" / ".env.example",
    REPO_ROOT / "streamlit_service" / ".env.example",
]
# Placeholders that authenticate nowhere: nothing to guess, so nothing to refuse.
PLACEHOLDERS = {"sk-replace-with-the-agent-host-virtual-key"}


def test_every_secret_in_the_env_example_files_is_known_to_each_exposure_check() -> None:
    keys, passwords, secrets = set(), set(), set()
    for path in EXAMPLE_FILES:
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if line.startswith("#") or not value.strip():
                continue
            if name.endswith("_KEY"):
                keys.add(value.strip())
            elif name.endswith("_SECRET"):
                secrets.add(value.strip())
            elif name == "POSTGRES_PASSWORD":
                passwords.add(value.strip())
            elif name.endswith("DATABASE_URL"):
                passwords.add(value.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1])
    assert keys and passwords
    for check in (hub_exposure, agent_host_main, ui_exposure):
        assert keys - PLACEHOLDERS <= check.EXAMPLE_KEYS, check.__name__
        assert passwords <= check.EXAMPLE_DB_PASSWORDS, check.__name__
    assert secrets <= ui_exposure.EXAMPLE_SECRETS  # the UI's cookie secret: only the UI holds one


def _agent_host(host: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "AGENT_HOST_API_KEY": EXAMPLE_HOST_KEY,
        "AGENT_HOST_PROXY_KEY": "sk-some-proxy-key",
        "DATABASE_URL": "postgresql://litellm:not-the-example@127.0.0.1:9/genailabs",
        "PUBLISHED_ADDRESS": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "agent_host", "--host", host, "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=scaled(60),
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_the_agent_host_on_all_interfaces_with_the_example_key_exits_with_one_line(host: str) -> None:
    result = _agent_host(host)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"agent_host: refusing to serve on {host} with the example value of AGENT_HOST_API_KEY from .env.example: "
        "set a secret of your own, or bind to 127.0.0.1"
    ]
    assert EXAMPLE_HOST_KEY not in result.stderr + result.stdout


def test_the_agent_host_names_the_example_database_password_too() -> None:
    result = _agent_host(
        "0.0.0.0",
        AGENT_HOST_API_KEY="sk-a-real-key",
        DATABASE_URL="postgresql://litellm:litellm@db:5432/genailabs",
        PUBLISHED_ADDRESS="192.168.10.20",  # published there, whatever the container binds
    )
    assert result.returncode == 1
    assert "refusing to serve on 192.168.10.20 with the example value of DATABASE_URL" in result.stderr
    assert ":litellm@" not in result.stderr


def test_the_ui_image_refuses_the_example_secrets_when_published_beyond_loopback() -> None:
    env = {
        **os.environ,
        "LITELLM_API_KEY": "sk-litellm-hub-local-123",
        "DATABASE_URL": "postgresql://litellm:litellm@db:5432/genailabs",
        "HUB_DATABASE_URL": "postgresql://litellm:Other-pw@db:5432/litellm",
        "UI_COOKIE_SECRET": "change-me-ui-cookie-secret",
    }
    check = [sys.executable, "-m", "chat_ui.exposure", "0.0.0.0"]
    cwd = REPO_ROOT / "streamlit_service"
    refused = subprocess.run(check, cwd=cwd, env={**env, "PUBLISHED_ADDRESS": ""}, capture_output=True, text=True)
    assert refused.returncode == 78
    assert refused.stderr.strip().splitlines() == [
        "ui: refusing to serve on 0.0.0.0 with the example value of LITELLM_API_KEY, UI_COOKIE_SECRET, "
        "DATABASE_URL from "
        ".env.example: set a secret of your own, or bind to 127.0.0.1"
    ]
    local = subprocess.run(check, cwd=cwd, env={**env, "PUBLISHED_ADDRESS": "127.0.0.1"}, capture_output=True)
    assert local.returncode == 0
