"""Which models the proxy serves and how many tokens each can take.

The window of a model is, in order: the configured override; the proxy's model info (`max_input_tokens`);
for Ollama-style deployments, what the runtime behind it reports (`/api/ps` gives the loaded context, its
num_ctx; `/api/show` the trained length, capped by the default window since a runtime serves num_ctx, not
more). A model with several deployments gets the smallest window among them.
"""

import asyncio
import logging
import time
from typing import Any

import httpx
from openai import AsyncOpenAI

from agent_host.errors import ModelNotFound
from agent_host.pipeline.upstream import upstream_errors

log = logging.getLogger(__name__)


class ModelCatalog:
    def __init__(
        self,
        client: AsyncOpenAI,
        overrides: dict[str, int],
        default_window: int,
        ttl: float = 30.0,
        probe: httpx.AsyncClient | None = None,
    ) -> None:
        self.client = client
        self.overrides = overrides
        self.default_window = default_window
        self.ttl = ttl
        self.probe = probe or httpx.AsyncClient(timeout=1.0)
        self._windows: dict[str, int | None] = {}
        self._fetched_at = 0.0
        self._loaded_ctx: dict[tuple[str, str], int] = {}  # a runtime's num_ctx does not change while it runs

    async def window(self, model: str) -> int:
        age = time.monotonic() - self._fetched_at
        if age > self.ttl or (model not in self._windows and age > 2.0):
            await self.refresh()
        if model not in self._windows:
            raise ModelNotFound(
                f"model '{model}' is not served by the proxy; GET /v1/models lists the models available"
            )
        if model in self.overrides:
            return self.overrides[model]
        return self._windows[model] or self.default_window

    async def refresh(self) -> None:
        async with upstream_errors():
            body: Any = await self.client.get("/model/info", cast_to=object)
        deployments = [d for d in (body.get("data", []) if isinstance(body, dict) else []) if d.get("model_name")]
        sizes = await asyncio.gather(*(self._deployment_window(d) for d in deployments))
        windows: dict[str, int | None] = {}
        for deployment, size in zip(deployments, sizes, strict=True):
            name = deployment["model_name"]
            known = [value for value in (windows.get(name), size) if value]
            windows[name] = min(known) if known else None
        self._windows = windows
        self._fetched_at = time.monotonic()

    async def _deployment_window(self, deployment: dict[str, Any]) -> int | None:
        info = deployment.get("model_info") or {}
        reported = info.get("max_input_tokens")
        if isinstance(reported, int) and reported > 0:
            return reported
        params = deployment.get("litellm_params") or {}
        backend, api_base = str(params.get("model", "")), params.get("api_base")
        if not backend.startswith(("ollama/", "ollama_chat/")) or not api_base:
            return None
        return await self._runtime_window(str(api_base).rstrip("/"), backend.split("/", 1)[1])

    async def _runtime_window(self, api_base: str, model: str) -> int | None:
        key = (api_base, model)
        try:
            running = (await self.probe.get(f"{api_base}/api/ps")).json().get("models", [])
            for entry in running:
                if entry.get("name") == model and isinstance(entry.get("context_length"), int):
                    self._loaded_ctx[key] = entry["context_length"]
            if key in self._loaded_ctx:
                return self._loaded_ctx[key]
            shown = (await self.probe.post(f"{api_base}/api/show", json={"model": model})).json()
            trained = (shown.get("model_info") or {}).get("context_length")
            return min(int(trained), self.default_window) if isinstance(trained, int) else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.debug("runtime %s did not report a window for %s: %s", api_base, model, exc)
            return self._loaded_ctx.get(key)
