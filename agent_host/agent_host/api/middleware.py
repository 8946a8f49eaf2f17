"""Request ids, one JSON access-log line per request (with who made it), and the body size limit."""

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_host.logs import request_id
from agent_host.people.identity import acting_for

log = logging.getLogger("agent_host.access")


class BodyLimitExceeded(Exception):
    pass


@dataclass(frozen=True)
class BodyLimit:
    method: str
    path: re.Pattern[str]
    max_bytes: int


def allow_large_bodies(app: Starlette, method: str, path: str, max_bytes: int) -> None:
    """Lets one route (a file upload) take bodies up to max_bytes instead of the app-wide limit."""
    limits: list[BodyLimit] = getattr(app.state, "body_limits", [])
    app.state.body_limits = [*limits, BodyLimit(method.upper(), re.compile(path), max_bytes)]


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {key.decode().lower(): value.decode() for key, value in scope.get("headers", [])}
        rid = headers.get("x-request-id") or uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 0
        limit = self._limit(scope)
        responded = False
        try:
            if scope["type"] == "http" and int(headers.get("content-length") or 0) > limit:
                status = 413
                await _send_json(send, 413, rid, "request_too_large", _too_large(limit))
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received, responded, status
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        if status:  # the response has started: all that is left is to stop the handler
                            raise BodyLimitExceeded(_too_large(limit))
                        # Answer 413 here and tell the handler the client left: body parsers turn an
                        # exception from receive() into a 400, which would hide the real reason.
                        status, responded = 413, True
                        await _send_json(send, 413, rid, "request_too_large", _too_large(limit))
                        return {"type": "http.disconnect"}
                return message

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if responded:
                    return
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                await send(message)

            await self.app(scope, limited_receive if scope["type"] == "http" else receive, send_with_id)
        finally:
            log.info(
                "%s %s %s",
                scope.get("method", "WS"),
                scope["path"],
                status,
                extra={
                    "fields": {
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        # The account id auth found for this request (set in this task), so a line says who.
                        "user": acting_for.get(),
                    }
                },
            )
            request_id.reset(token)

    def _limit(self, scope: Scope) -> int:
        state = getattr(scope.get("app"), "state", None)
        for rule in getattr(state, "body_limits", ()):
            if scope.get("method") == rule.method and rule.path.fullmatch(scope["path"]):
                return int(rule.max_bytes)
        return self.max_body_bytes


def _too_large(limit: int) -> str:
    return f"request body is larger than the limit of {limit} bytes"


async def _send_json(send: Send, status: int, rid: str, kind: str, message: str) -> None:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-id", rid.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
