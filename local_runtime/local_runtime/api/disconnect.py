"""Non-streaming requests also stop their generation when the client goes away."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import Request

from local_runtime.errors import RuntimeServiceError

Result = TypeVar("Result")

# How often a waiting non-streaming request checks that its client is still there.
POLL_SECONDS = 0.25


class ClientGone(RuntimeServiceError):
    """Nobody reads this; it only unwinds the handler (499 is nginx's "client closed request")."""

    status_code = 499


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, Result]) -> Result:
    """Await `work`, cancelling it if the client disconnects (Starlette only watches streams)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                raise ClientGone("client disconnected")
    finally:
        if not task.done():
            task.cancel()
