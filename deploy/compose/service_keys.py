"""Compose's one-shot `keys-init`: the agent host's and the UI's service keys on the proxy, and the UI's cookie secret.

Each secret goes to its own file in the shared `servicekeys` volume, readable only by the service that reads it
(AGENT_HOST_PROXY_KEY_FILE, LITELLM_API_KEY_FILE, UI_COOKIE_SECRET_FILE), so no operator copies a key into .env.
It runs in the proxy image, where the hub is installed, as root (to hand each file to its service's user), after
PostgreSQL is healthy and before the agent host and the UI start. It is `python -m hub.keys create --service`
without the command line (hub.keystore), so it can check what it made before:

- a file holding a key that is still an active service key is kept (so is the cookie secret: a new one would
  sign everyone out), which makes every `docker compose up` after the first a no-op;
- a lost, revoked or unknown key (the volume or the database was removed) is replaced: the alias's old key is
  revoked and a new one written.

Nothing secret is printed: only what was kept or made, by alias and prefix.
"""

import contextlib
import os
import secrets
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hub.config import get_settings
from hub.errors import AdminError, DatabaseUnavailable, NoSuchKey
from hub.keystore import KeyStore, connect

# The users the agent host and UI images run as (agent_host/Dockerfile, streamlit_service/Dockerfile).
AGENT_HOST_UID = 10002
UI_UID = 10001


@dataclass(frozen=True)
class ServiceKey:
    alias: str  # the alias `devstack` uses for the same service under `make up`
    file: str
    owner: int


def service_keys() -> tuple[ServiceKey, ...]:
    return (
        ServiceKey("agent-host", "agent-host.proxy-key", int(os.environ.get("AGENT_HOST_UID", AGENT_HOST_UID))),
        ServiceKey("chat-ui", "ui.proxy-key", int(os.environ.get("UI_UID", UI_UID))),
    )


COOKIE_SECRET_FILE = "ui.cookie-secret"


def read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def write_secret(path: Path, value: str, owner: int) -> None:
    """Replaces `path` at once with a file only `owner` can read (mode 0400 before anything is written)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    hand_over(temporary, owner)
    os.replace(temporary, path)


def hand_over(path: Path, owner: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, owner, owner)
    path.chmod(0o400)


def ensure_key(store: KeyStore, directory: Path, wanted: ServiceKey) -> str:
    """The service's key file holds an active service key afterwards; says what was done."""
    path = directory / wanted.file
    existing = read_secret(path)
    listing = store.get(existing) if existing else None
    if listing is not None and listing.status(datetime.now(UTC)) == "active" and listing.record.is_service:
        hand_over(path, wanted.owner)
        return f"kept the service key '{wanted.alias}' ({listing.record.key_prefix}...)"
    with contextlib.suppress(NoSuchKey):
        store.revoke(wanted.alias)  # its key is lost (or this file's is dead): it cannot be shown again
    key, record = store.create(wanted.alias, [], metadata={"service": True})
    write_secret(path, key, wanted.owner)
    return f"created the service key '{wanted.alias}' ({record.key_prefix}...)"


def ensure_cookie_secret(directory: Path, owner: int) -> str:
    path = directory / COOKIE_SECRET_FILE
    if read_secret(path):
        hand_over(path, owner)
        return "kept the UI's cookie secret"
    write_secret(path, secrets.token_urlsafe(32), owner)
    return "created the UI's cookie secret"


def main(argv: list[str]) -> int:
    directory = Path(argv[0] if argv else "/run/genailabs/keys")
    directory.mkdir(parents=True, exist_ok=True)
    settings = get_settings()
    try:
        with connect(settings.hub_database_url.get_secret_value(), settings.hub_db_connect_timeout) as conn:
            store = KeyStore(conn)
            done = [ensure_key(store, directory, wanted) for wanted in service_keys()]
    except (DatabaseUnavailable, AdminError) as exc:
        print(f"keys-init: {exc}", file=sys.stderr)
        return 1
    done.append(ensure_cookie_secret(directory, int(os.environ.get("UI_UID", UI_UID))))
    for line in done:
        print(f"keys-init: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
