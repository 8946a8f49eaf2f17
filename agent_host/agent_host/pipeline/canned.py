"""Replies the host writes itself, shaped exactly like the proxy's, so clients cannot tell the path apart."""

import time
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from openai.types.chat import ChatCompletion, ChatCompletionChunk


class ChunkStream(Protocol):
    """The proxy's AsyncStream, or a canned one."""

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]: ...

    async def close(self) -> None: ...


def canned_completion(model: str, text: str) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": f"chatcmpl-host-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}},
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


class CannedStream:
    """A one-message stream: role and text, then the stop chunk and a zero usage chunk."""

    def __init__(self, model: str, text: str) -> None:
        self.id = f"chatcmpl-host-{uuid.uuid4().hex}"
        self.model = model
        self.text = text

    def _chunk(self, choices: list[dict[str, object]], usage: dict[str, int] | None = None) -> ChatCompletionChunk:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": int(time.time()), "model": self.model}
        return ChatCompletionChunk.model_validate({**body, "choices": choices, "usage": usage})

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        yield self._chunk([{"index": 0, "delta": {"role": "assistant", "content": self.text}}])
        yield self._chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        yield self._chunk([], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})

    async def close(self) -> None:
        return None
