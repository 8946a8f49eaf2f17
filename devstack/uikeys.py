"""The UI's secrets for `make up`: its service key on the proxy (alias `chat-ui`, so it can chat as each person)
and the secret that signs its sign-in cookies.

Both are kept in .stack/ui.keys (mode 0600) and reach the UI only through supervisord's environment
(services.secret_env), like the agent host's keys (hostkeys.py).
"""

import json
import secrets
from pathlib import Path

from devstack.config import StackSettings
from devstack.hostkeys import create_service_key, save_keys

ALIAS = "chat-ui"
NAMES = ("LITELLM_API_KEY", "UI_COOKIE_SECRET")


def ui_keys_path(settings: StackSettings) -> Path:
    return settings.stack_dir / "ui.keys"


def _read(settings: StackSettings) -> dict[str, str]:
    try:
        keys = json.loads(ui_keys_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in keys.items() if v} if isinstance(keys, dict) else {}


def load_ui_keys(settings: StackSettings) -> dict[str, str] | None:
    keys = _read(settings)
    return {name: keys[name] for name in NAMES} if all(keys.get(name) for name in NAMES) else None


def create_ui_keys(settings: StackSettings) -> dict[str, str]:
    """Makes what is missing: the service key (through the hub CLI) and the cookie secret (generated once)."""
    keys = _read(settings)
    if not keys.get("LITELLM_API_KEY"):
        keys["LITELLM_API_KEY"] = create_service_key(settings, ALIAS)
    # Kept across `up`s: a new secret would sign everyone out.
    keys.setdefault("UI_COOKIE_SECRET", secrets.token_urlsafe(32))
    return save_keys(ui_keys_path(settings), {name: keys[name] for name in NAMES})
