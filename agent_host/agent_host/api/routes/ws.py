"""/ws/chat: the chat stream over a WebSocket, with cancel.

Client → {"type": "chat", <chat completion body>} (with `session_id` and `"regenerate": true` and no messages:
the stored history answered again) or {"type": "cancel"}. The credential's person owns the turn.
Host → {"type": "context", ...facts}, with RAG {"type": "citations", "citations"},
{"type": "token", "content"}..., {"type": "usage", "usage", "context"},
then {"type": "done", "finish_reason"} or {"type": "cancelled"}; failures send {"type": "error", "error": {...}}.
"""

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from agent_host.config import Settings
from agent_host.deps import PipelineDep, SettingsDep, authenticate_connection
from agent_host.errors import AgentHostError
from agent_host.pipeline.chat import ChatPipeline
from agent_host.schemas import ChatCompletionRequest
from genailabs_accounts.models import Account

router = APIRouter(tags=["websocket"])
log = logging.getLogger(__name__)


@router.websocket("/ws/chat")
async def ws_chat(websocket: WebSocket, pipeline: PipelineDep, settings: SettingsDep) -> None:
    try:
        person = await authenticate_connection(websocket)
    except AgentHostError as exc:
        await websocket.close(code=1008, reason=exc.message[:120])  # a close reason is at most 123 bytes
        return
    await websocket.accept()
    # Bounded: a client sending chats faster than turns finish is closed, not buffered without end.
    inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=settings.ws_max_queued_messages)
    cancel = asyncio.Event()
    reader = asyncio.create_task(read(websocket, inbox, cancel, settings))
    try:
        while (message := await inbox.get()) is not None:
            cancel.clear()
            await run_turn(websocket, pipeline, message, cancel, person)
        if reader.done() and (refusal := reader.result()) is not None:
            code, kind, text = refusal
            await _send_error(websocket, kind, text)
            await websocket.close(code=code, reason=kind)
    except (WebSocketDisconnect, RuntimeError):  # the client left (RuntimeError: sending on a closed socket)
        pass
    finally:
        reader.cancel()


Refusal = tuple[int, str, str]
NOT_JSON = "not-json"  # the type given to a frame that is not JSON, answered by an error frame


async def read(
    websocket: WebSocket, inbox: asyncio.Queue[dict[str, Any] | None], cancel: asyncio.Event, settings: Settings
) -> Refusal | None:
    """Feeds the inbox until the client leaves (None) or breaks a limit (why the socket is closed)."""
    refusal: Refusal | None = None
    try:
        while refusal is None:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                break
            raw: str | bytes = frame.get("text") or frame.get("bytes") or b""
            if len(raw) > settings.max_body_bytes:
                refusal = (1009, "message_too_large", f"a message is larger than {settings.max_body_bytes} bytes")
                break
            try:
                message = json.loads(raw)
            except ValueError:
                message = {"type": NOT_JSON}
            if isinstance(message, dict) and message.get("type") == "cancel":
                cancel.set()
                continue
            try:
                inbox.put_nowait(message if isinstance(message, dict) else {})
            except asyncio.QueueFull:
                waiting = f"more than {settings.ws_max_queued_messages} chat messages waiting (WS_MAX_QUEUED_MESSAGES)"
                refusal = (1008, "too_many_messages", waiting)
    except (WebSocketDisconnect, RuntimeError):
        pass
    cancel.set()
    while not inbox.empty():  # what was queued is not answered: the client left or is being closed
        inbox.get_nowait()
    inbox.put_nowait(None)
    return refusal


async def run_turn(
    websocket: WebSocket, pipeline: ChatPipeline, message: dict[str, Any], cancel: asyncio.Event, person: Account
) -> None:
    try:
        if message.get("type") == NOT_JSON:
            await _send_error(websocket, "invalid_request", "a message is not JSON")
            return
        body = {key: value for key, value in message.items() if key != "type"}
        request = ChatCompletionRequest.model_validate({**body, "stream": True})
        turn = await pipeline.prepare(request, person)
        await websocket.send_json({"type": "context", **turn.facts.model_dump()})
        if turn.citations is not None:
            await websocket.send_json({"type": "citations", "citations": turn.citations})
        finish_reason: str | None = None
        usage: dict[str, Any] | None = None
        stream = await pipeline.open_stream(turn)
        try:
            async for chunk in stream:
                if cancel.is_set():
                    break
                if chunk.usage is not None:
                    usage = chunk.usage.model_dump()
                if chunk.choices:
                    choice = chunk.choices[0]
                    finish_reason = choice.finish_reason or finish_reason
                    if choice.delta.content:
                        await websocket.send_json({"type": "token", "content": choice.delta.content})
        finally:
            await stream.aclose()  # stores what was generated, marked incomplete when cancelled
        if cancel.is_set():
            await websocket.send_json({"type": "cancelled", "context": turn.facts.model_dump()})
            return
        await websocket.send_json({"type": "usage", "usage": usage, "context": turn.facts.model_dump()})
        await websocket.send_json({"type": "done", "finish_reason": finish_reason})
    except ValidationError as exc:
        await _send_error(websocket, "invalid_request", "; ".join(e["msg"] for e in exc.errors()[:3]))
    except AgentHostError as exc:
        log.warning("websocket turn failed with %s: %s", exc.type, exc.message)
        await _send_error(websocket, exc.type, exc.message)


async def _send_error(websocket: WebSocket, kind: str, message: str) -> None:
    await websocket.send_json({"type": "error", "error": {"type": kind, "message": message}})
