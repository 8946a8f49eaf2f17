"""Refuses to serve on a non-loopback address with a secret copied from an .env.example file.

The proxy listens where LiteLLM's `--host` says (its default is 0.0.0.0, or HOST); in a container that
is always 0.0.0.0, so the address the port is published on (PUBLISHED_ADDRESS, set by compose from
BIND_ADDRESS) decides instead.
"""

import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hub.config import HubSettings

# The secrets the committed .env.example files ship with (tests/stack/test_example_secrets.py keeps them in step).
EXAMPLE_KEYS = frozenset({"sk-litellm-hub-local-123", "change-me-agent-host-key"})
EXAMPLE_DB_PASSWORDS = frozenset({"litellm"})
LITELLM_DEFAULT_HOST = "0.0.0.0"


def is_loopback(address: str) -> bool:
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def served_address(published: str, argv: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """Where clients reach this proxy; None when this process is not the LiteLLM server (tests, the CLI)."""
    if published:
        return published
    if not argv or Path(argv[0]).name != "litellm":
        return None
    for index, arg in enumerate(argv):
        if arg == "--host" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--host="):
            return arg.split("=", 1)[1]
    return environ.get("HOST") or LITELLM_DEFAULT_HOST  # click's envvar for --host, then LiteLLM's default


def example_secrets_in_use(settings: HubSettings) -> list[str]:
    """The names of the settings that still hold a value from .env.example (never the values)."""
    names = []
    if settings.litellm_master_key.get_secret_value() in EXAMPLE_KEYS:
        names.append("LITELLM_MASTER_KEY")
    password = urlsplit(settings.hub_database_url.get_secret_value()).password
    if password is not None and unquote(password) in EXAMPLE_DB_PASSWORDS:
        names.append("HUB_DATABASE_URL")
    return names


def exposure_problem(settings: HubSettings, address: str | None) -> str | None:
    """One line saying why the proxy must not start, or None."""
    if address is None or is_loopback(address):
        return None
    names = example_secrets_in_use(settings)
    if not names:
        return None
    return (
        f"hub: refusing to serve on {address} with the example value of {', '.join(names)} from .env.example: "
        "set a secret of your own, or bind to 127.0.0.1"
    )


def refuse_exposed_example_secrets(settings: HubSettings) -> None:
    """Ends the proxy at start-up with one line when `exposure_problem` finds one."""
    problem = exposure_problem(settings, served_address(settings.published_address, sys.argv, os.environ))
    if problem is not None:
        print(problem, file=sys.stderr, flush=True)
        # Raised inside LiteLLM's startup event, an exception would become uvicorn's multi-line
        # traceback and a retry loop; nothing has been opened yet that needs an orderly exit.
        os._exit(78)  # EX_CONFIG
