"""Request ids, one JSON access-log line per request, and the body size limit."""

import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_host.logs import request_id

log = logging.getLogger("agent_host.access")


class BodyLimitExceeded(Exception):
    pass


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
        try:
            if scope["type"] == "http" and int(headers.get("content-length") or 0) > self.max_body_bytes:
                status = 413
                await _send_json(send, 413, rid, "request_too_large", self._too_large())
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise BodyLimitExceeded(self._too_large())
                return message

            async def send_with_id(message: Message) -> None:
                nonlocal status
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
                extra={"fields": {"status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 2)}},
            )
            request_id.reset(token)

    def _too_large(self) -> str:
        return f"request body is larger than the limit of {self.max_body_bytes} bytes"


async def _send_json(send: Send, status: int, rid: str, kind: str, message: str) -> None:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-id", rid.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
