"""The agent host's secrets for `make up`: its own proxy key (a service key, made once through the hub CLI), its
API key and its admin key (the operator's keys: they act as the first admin).

They are kept in .stack/agent_host.keys (mode 0600) and reach the agent host only through supervisord's
environment (services.secret_env), never through the generated supervisord.conf.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from devstack.config import REPO_ROOT, StackSettings

ALIAS = "agent-host"


def keys_path(settings: StackSettings) -> Path:
    return settings.stack_dir / "agent_host.keys"


def load_keys(settings: StackSettings) -> dict[str, str] | None:
    try:
        keys = json.loads(keys_path(settings).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(keys, dict) and keys.get("AGENT_HOST_PROXY_KEY") and keys.get("AGENT_HOST_API_KEY"):
        return {str(k): str(v) for k, v in keys.items()}
    return None


def hub_keys(settings: StackSettings, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m hub.keys ARGS` with the master key's authority; its output as it printed it."""
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": settings.litellm_master_key,
        "HUB_DATABASE_URL": settings.database_url,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "hub.keys", *args],
        cwd=REPO_ROOT / "litellm_hub",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stderr.strip().splitlines() or result.stdout.strip().splitlines() or ["no output"])[-1]


def create_service_key(settings: StackSettings, alias: str) -> str:
    """A new service key (one that may act for a person) under `alias`, replacing a lost one of that alias."""
    result = hub_keys(settings, "create", "--alias", alias, "--service")
    if result.returncode != 0 and "exist" in result.stderr.lower():
        hub_keys(settings, "revoke", alias)  # the key is lost with .stack/: it cannot be shown again
        result = hub_keys(settings, "create", "--alias", alias, "--service")
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(f"could not create the proxy key '{alias}': {_last_line(result)}")
    return result.stdout.strip().splitlines()[0]


def mark_service(settings: StackSettings, alias: str) -> None:
    """Makes the key of a stack made before service keys existed one (idempotent)."""
    result = hub_keys(settings, "mark-service", alias)
    if result.returncode != 0:
        raise RuntimeError(f"could not make '{alias}' a service key: {_last_line(result)}")


def create_keys(settings: StackSettings) -> dict[str, str]:
    """Creates the agent host's service key on the proxy and saves it with the host's own keys."""
    keys = {
        "AGENT_HOST_PROXY_KEY": create_service_key(settings, ALIAS),
        "AGENT_HOST_API_KEY": os.environ.get("AGENT_HOST_API_KEY") or "sk-agent-" + secrets.token_urlsafe(24),
    }
    return save_keys(keys_path(settings), {**keys, "AGENT_HOST_ADMIN_KEY": _admin_key()})


def ensure_admin_key(settings: StackSettings) -> None:
    """Adds the admin key to a keys file written before admin keys existed, keeping the other keys."""
    keys = load_keys(settings)
    if keys is not None and not keys.get("AGENT_HOST_ADMIN_KEY"):
        save_keys(keys_path(settings), {**keys, "AGENT_HOST_ADMIN_KEY": _admin_key()})


def _admin_key() -> str:
    return os.environ.get("AGENT_HOST_ADMIN_KEY") or "sk-agent-admin-" + secrets.token_urlsafe(24)


def save_keys(path: Path, keys: dict[str, str]) -> dict[str, str]:
    """Writes a keys file readable by its owner only (created 0600 before anything is written to it)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(keys))
    return keys
