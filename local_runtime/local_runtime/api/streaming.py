"""Streaming responses that always close their source, so a gone client cancels its generation."""

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Send

from local_runtime.errors import RuntimeServiceError

log = logging.getLogger("local_runtime.api")


class ClosingStreamingResponse(StreamingResponse):
    """Closes the body iterator however streaming ends (done, client gone, or cancelled)."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(BaseException):
                    await aclose()


async def guarded(chunks: AsyncIterator[Any], during: str) -> AsyncIterator[Any]:
    """A failure after the stream started ends it with Ollama's error line (`{"error": ...}`) instead of a cut:
    the error's own text when a client may see it, else `internal error during <during>` (and the log)."""
    try:
        async for chunk in chunks:
            yield chunk
    except RuntimeServiceError as exc:
        yield {"error": str(exc)}
    except Exception:
        log.exception("%s failed", during)
        yield {"error": f"internal error during {during}"}


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


async def _ndjson_lines(chunks: AsyncIterator[BaseModel | dict[str, Any]]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        body = dump(chunk) if isinstance(chunk, BaseModel) else chunk
        yield json.dumps(body).encode() + b"\n"


def ndjson(chunks: AsyncIterator[BaseModel | dict[str, Any]]) -> ClosingStreamingResponse:
    return ClosingStreamingResponse(_ndjson_lines(chunks), media_type="application/x-ndjson")


async def _sse_events(chunks: AsyncIterator[BaseModel | dict[str, Any]]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        body = dump(chunk) if isinstance(chunk, BaseModel) else chunk
        yield b"data: " + json.dumps(body).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"


def sse(chunks: AsyncIterator[BaseModel | dict[str, Any]]) -> ClosingStreamingResponse:
    return ClosingStreamingResponse(_sse_events(chunks), media_type="text/event-stream")
