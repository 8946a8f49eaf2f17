"""Which models the proxy serves and how many tokens each can take."""

import logging
import time
from typing import Any

from openai import AsyncOpenAI

from agent_host.errors import ModelNotFound
from agent_host.pipeline.upstream import upstream_errors

log = logging.getLogger(__name__)


class ModelCatalog:
    """The proxy's /model/info, cached; a configured window wins over what the proxy reports."""

    def __init__(self, client: AsyncOpenAI, overrides: dict[str, int], default_window: int, ttl: float = 60.0) -> None:
        self.client = client
        self.overrides = overrides
        self.default_window = default_window
        self.ttl = ttl
        self._windows: dict[str, int | None] = {}
        self._fetched_at = 0.0

    async def window(self, model: str) -> int:
        if time.monotonic() - self._fetched_at > self.ttl or (
            model not in self._windows and time.monotonic() - self._fetched_at > 2.0
        ):
            await self.refresh()
        if model not in self._windows:
            raise ModelNotFound(
                f"model '{model}' is not served by the proxy; GET /v1/models lists the models available"
            )
        if model in self.overrides:
            return self.overrides[model]
        reported = self._windows[model]
        return min(reported, self.default_window) if reported else self.default_window

    async def refresh(self) -> None:
        async with upstream_errors():
            body: Any = await self.client.get("/model/info", cast_to=object)
        windows: dict[str, int | None] = {}
        for deployment in body.get("data", []) if isinstance(body, dict) else []:
            info = deployment.get("model_info") or {}
            reported = info.get("max_input_tokens") or info.get("max_tokens")
            name = deployment.get("model_name")
            if name:
                known = windows.get(name)
                value = int(reported) if isinstance(reported, int) and reported > 0 else None
                windows[name] = min(filter(None, [known, value]), default=None)
        self._windows = windows
        self._fetched_at = time.monotonic()
