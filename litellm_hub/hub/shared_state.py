"""Whether the proxy instances share their state right now: Redis answering, or each instance on its own.

LiteLLM keeps rate limits, cooldowns and routing state in Redis (`litellm_settings.cache`) and falls back to
each process's memory while Redis fails. It does so quietly; this watch makes it plain, once per change, in
the log and in `GET /health/hub`.
"""

import asyncio
import contextlib
import logging
import os
import sys
import time
from typing import Literal
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("hub.shared_state")

RedisState = Literal["shared", "resuming", "down", "off"]


def describe_redis(url: str) -> str:
    """host:port/db, for messages: the URL's password never reaches a log."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"


class RedisWatch:
    """Pings Redis every `interval` seconds and says when the instances stop and start sharing state."""

    def __init__(self, url: str, interval: float, timeout: float, resume_after: float) -> None:
        self._url = url
        # After an outage LiteLLM's circuit breaker skips Redis for this long before it tries again
        # (REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT): until then the limits are still per instance.
        self._resume_after = resume_after
        self._back_at = 0.0
        self._where = describe_redis(url) if url else ""
        self._interval = interval
        self._timeout = timeout
        self._state: RedisState = "off" if not url else "shared"
        self._reason = ""
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> RedisState:
        return self._state

    def describe(self) -> dict[str, str]:
        if self._state == "off":
            limits = "per instance: REDIS_URL is not set"
        elif self._state == "down":
            limits = f"per instance until Redis at {self._where} answers again ({self._reason})"
        elif self._state == "resuming":
            limits = f"per instance for a few seconds more: Redis at {self._where} answers again"
        else:
            limits = f"shared through Redis at {self._where}"
        return {"redis": self._state, "limits": limits, "response_cache": limits}

    def start(self) -> None:
        if self._task is not None or not self._url:  # no URL: the proxy refused to start (refuse_without_redis)
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hub-redis-watch")

    async def check_once(self, client: "aioredis.Redis") -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._mark_down(type(exc).__name__)
        else:
            self._mark_shared()

    async def _run(self) -> None:
        client = aioredis.from_url(self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout)
        try:
            while True:
                await self.check_once(client)
                await asyncio.sleep(self._interval)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _mark_down(self, reason: str) -> None:
        self._reason = reason
        if self._state != "down":
            log.warning(
                "Redis at %s is unreachable (%s): rate limits, cooldowns and the response cache are per instance "
                "until it returns; the proxy keeps answering",
                self._where,
                reason,
            )
        self._state = "down"

    def _mark_shared(self) -> None:
        now = time.monotonic()
        if self._state == "down":
            self._state, self._back_at = "resuming", now
            log.warning(
                "Redis at %s answers again: LiteLLM resumes sharing within %.0fs", self._where, self._resume_after
            )
        if self._state == "resuming" and now - self._back_at >= self._resume_after:
            log.warning(
                "Redis at %s is back: rate limits, cooldowns and the response cache are shared again", self._where
            )
            self._state = "shared"


def refuse_without_redis(redis_url: str) -> None:
    """Ends the proxy at start-up with one line when REDIS_URL is unset: `litellm_settings.cache` needs it.

    Redis being down is fine (LiteLLM falls back to each instance's memory); no Redis configured at all would
    send LiteLLM to localhost:6379, or to a traceback for an empty URL.
    """
    if not redis_url.strip():
        print(
            "hub: REDIS_URL is not set: the proxy keeps rate limits, cooldowns and its response cache in Redis "
            "(`make up` and docker compose start one; set REDIS_URL=redis://host:6379/0 when you start it by hand)",
            file=sys.stderr,
            flush=True,
        )
        os._exit(78)  # EX_CONFIG: inside LiteLLM's startup an exception would be a traceback and a retry loop
