"""Cheap checks of what answers where: ports, HTTP health, PostgreSQL."""

import socket
import time
from collections.abc import Callable

import httpx
import psycopg


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, headers: dict[str, str] | None = None, timeout: float = 2.0) -> str | None:
    """Returns None when `url` answers 2xx, else a one-line reason."""
    try:
        response = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"{url} unreachable ({type(exc).__name__})"
    if response.is_success:
        return None
    return f"{url} answered {response.status_code}"


def ollama_version(base_url: str) -> str | None:
    """The version string if an Ollama-compatible server answers at base_url."""
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/api/version", timeout=1.0)
        return str(response.json()["version"]) if response.is_success else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def postgres_ok(url: str, timeout: int = 2) -> str | None:
    """Returns None when a PostgreSQL at `url` accepts the credentials, else a one-line reason."""
    try:
        with psycopg.connect(url, connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return first_line
    return None


def wait_until(check: Callable[[], str | None], timeout: float, interval: float = 0.3) -> str | None:
    """Polls `check` until it returns None (healthy) or time runs out; returns the last reason."""
    deadline = time.monotonic() + timeout
    reason = check()
    while reason is not None and time.monotonic() < deadline:
        time.sleep(interval)
        reason = check()
    return reason
