"""The agent host's secrets for `make up`: its own proxy key (made once through the hub CLI), its API key and
its admin key (the credential that adds and removes MCP servers at run time).

Both are kept in .stack/agent_host.keys (mode 0600) and reach the agent host only through supervisord's
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


def create_keys(settings: StackSettings) -> dict[str, str]:
    """Creates the agent host's virtual key (replacing a lost one of the same alias) and saves both keys."""
    result = hub_keys(settings, "create", "--alias", ALIAS)
    if result.returncode != 0 and "exist" in result.stderr.lower():
        hub_keys(settings, "revoke", ALIAS)  # the key is lost with .stack/: it cannot be shown again
        result = hub_keys(settings, "create", "--alias", ALIAS)
    if result.returncode != 0 or not result.stdout.strip():
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"could not create the agent host's proxy key: {reason}")
    keys = {
        "AGENT_HOST_PROXY_KEY": result.stdout.strip().splitlines()[0],
        "AGENT_HOST_API_KEY": os.environ.get("AGENT_HOST_API_KEY") or "sk-agent-" + secrets.token_urlsafe(24),
    }
    return _save(settings, {**keys, "AGENT_HOST_ADMIN_KEY": _admin_key()})


def ensure_admin_key(settings: StackSettings) -> None:
    """Adds the admin key to a keys file written before admin keys existed, keeping the other keys."""
    keys = load_keys(settings)
    if keys is not None and not keys.get("AGENT_HOST_ADMIN_KEY"):
        _save(settings, {**keys, "AGENT_HOST_ADMIN_KEY": _admin_key()})


def _admin_key() -> str:
    return os.environ.get("AGENT_HOST_ADMIN_KEY") or "sk-agent-admin-" + secrets.token_urlsafe(24)


def _save(settings: StackSettings, keys: dict[str, str]) -> dict[str, str]:
    path = keys_path(settings)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(keys))
    return keys
