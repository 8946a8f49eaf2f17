"""Checks at the door, before a body is read: the browser Origin and Host (CSRF, DNS rebinding), the body size.

Any web page can POST a text/plain body to localhost; Ollama closed that hole (CVE-2024-28224) by refusing
foreign Origins and, when bound to loopback, Host names that are not local. The same is done here.
"""

import ipaddress
import re
import socket

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local_runtime.errors import RequestTooLarge

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "0.0.0.0")
# Ollama's defaults: the local hosts on any port, and the schemes of desktop and editor apps.
DEFAULT_ORIGINS = [
    f"{scheme}://{host}{port}" for host in _LOCAL_HOSTS for scheme in ("http", "https") for port in ("", ":*")
] + ["app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*"]
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")


def error_response(path: str, status: int, message: str) -> JSONResponse:
    """Ollama's {"error": "..."} on /api, OpenAI's {"error": {...}} on /v1."""
    if path.startswith("/v1"):
        kind = "not_found_error" if status == 404 else "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status)
    return JSONResponse({"error": message}, status)


def origin_pattern(origins: list[str]) -> re.Pattern[str]:
    """One regex for Ollama-style origin patterns, where `*` stands for any text."""
    alternatives = (".*".join(re.escape(part) for part in origin.split("*")) for origin in origins)
    return re.compile("|".join(f"(?:{alternative})" for alternative in alternatives), re.IGNORECASE)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def local_host_header(value: str, hostname: str) -> bool:
    """Whether a Host header names this machine: what a DNS-rebinding page cannot send (Ollama's rule)."""
    host = value.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host in ("", "localhost") or host.endswith(_LOCAL_SUFFIXES) or host == hostname:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


class OriginGuard:
    """403 for a browser request from a foreign Origin, or (on loopback) a Host that is not local."""

    def __init__(self, app: ASGIApp, origins: list[str], check_host: bool) -> None:
        self.app = app
        self.allowed = origin_pattern(DEFAULT_ORIGINS + origins)
        self.check_host = check_host
        self.hostname = socket.gethostname().lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            problem = None
            if self.check_host and not local_host_header(headers.get("host", ""), self.hostname):
                problem = f"host {headers.get('host')!r} is not allowed"
            elif origin is not None and not self.allowed.fullmatch(origin):
                problem = f"origin {origin!r} is not allowed (see RUNTIME_ORIGINS)"
            if problem is not None:
                await error_response(scope["path"], 403, problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# Bodies that are files, not requests: the blob upload streams to disk under its own bound (api/manage.py:
# RUNTIME_MAX_BLOB_BYTES and the disk's free space).
OWN_BOUND_PREFIXES = ("/api/blobs/",)


class BodyLimit:
    """413 for a body over `max_bytes`: at once from Content-Length, else once the bytes read pass it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"] == "POST" and scope["path"].startswith(OWN_BOUND_PREFIXES)):
            await self.app(scope, receive, send)
            return
        message = f"request body is larger than {self.max_bytes} bytes"
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await error_response(scope["path"], 413, message)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            chunk = await receive()
            if chunk["type"] == "http.request":
                received += len(chunk.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge(message)  # raised inside the route: its error handler answers
            return chunk

        await self.app(scope, counted, send)
