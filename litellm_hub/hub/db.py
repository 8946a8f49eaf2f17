"""PostgreSQL for the hub: the schema (migrated on first use) and the async queries the proxy runs."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from hub.errors import DatabaseUnavailable
from hub.records import KeyRecord, UsageRow
from hub.schema import HUB_MIGRATIONS

log = logging.getLogger("hub.db")

STATEMENT_TIMEOUT_MS = 15_000

USAGE_COLUMNS = (
    "request_id, started_at, ended_at, key_hash, key_alias, model_requested, model_group, deployment, "
    "deployment_id, api_base, prompt_tokens, completion_tokens, cost, latency_ms, ttft_ms, status, "
    "http_status, error, stream, cache_hit"
)
# A later event of the same request (a fallback that succeeded) replaces a logged failure, never a success.
UPSERT_USAGE = f"""
INSERT INTO hub_request_log ({USAGE_COLUMNS})
VALUES ({", ".join(["%s"] * 20)})
ON CONFLICT (request_id) DO UPDATE SET
    started_at = LEAST(hub_request_log.started_at, EXCLUDED.started_at),
    ended_at = EXCLUDED.ended_at,
    latency_ms = EXTRACT(EPOCH FROM EXCLUDED.ended_at - LEAST(hub_request_log.started_at, EXCLUDED.started_at))
                 * 1000,
    key_hash = EXCLUDED.key_hash, key_alias = EXCLUDED.key_alias,
    model_requested = COALESCE(hub_request_log.model_requested, EXCLUDED.model_requested),
    model_group = EXCLUDED.model_group, deployment = EXCLUDED.deployment,
    deployment_id = EXCLUDED.deployment_id, api_base = EXCLUDED.api_base,
    prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens,
    cost = EXCLUDED.cost, ttft_ms = EXCLUDED.ttft_ms, status = EXCLUDED.status,
    http_status = EXCLUDED.http_status, error = EXCLUDED.error, stream = EXCLUDED.stream,
    cache_hit = EXCLUDED.cache_hit
WHERE hub_request_log.status <> 'success'
"""

# What key `k`'s budget holder has spent: a person with every key they have had (a disabled and re-enabled
# account keeps its spend), any other key alone. hub_spend is kept by a trigger on hub_request_log
# (migrations/0002_shared_spend.sql), so every proxy instance reads the same figure.
KEY_SPEND = "COALESCE((SELECT s.spend FROM hub_spend s WHERE s.holder = hub_spend_holder(k.key_hash)), 0)"
KEY_WITH_SPEND = f"""
SELECT k.*, {KEY_SPEND} AS spend
FROM hub_keys k WHERE k.key_hash = %s
"""
SPEND_OF_HOLDER = """
SELECT COALESCE((SELECT spend FROM hub_spend WHERE holder = h), 0)
     + COALESCE((SELECT sum(cost) FROM hub_spend_pending WHERE holder = h), 0)
FROM hub_spend_holder(%s) AS h
"""
# Once per request, and not when its log row is already in: that row counted the cost (the trigger on
# hub_request_log takes the same lock, so one of the two always sees the other).
RECORD_PENDING = """
INSERT INTO hub_spend_pending (request_id, holder, cost)
SELECT %(request_id)s, hub_spend_holder(%(key_hash)s), %(cost)s
WHERE NOT EXISTS (SELECT 1 FROM hub_request_log WHERE request_id = %(request_id)s AND status = 'success')
ON CONFLICT (request_id) DO NOTHING
"""


def describe_url(url: str) -> str:
    """host:port/database, for messages: the URL's credentials must never reach a log or a terminal."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def key_from_row(row: dict[str, Any]) -> KeyRecord:
    return KeyRecord(**{name: row[name] for name in KeyRecord.__dataclass_fields__})


def usage_params(row: UsageRow) -> tuple[Any, ...]:
    return (
        row.request_id, row.started_at, row.ended_at, row.key_hash, row.key_alias, row.model_requested,
        row.model_group, row.deployment, row.deployment_id, row.api_base, row.prompt_tokens,
        row.completion_tokens, row.cost, row.latency_ms, row.ttft_ms, row.status, row.http_status,
        row.error, row.stream, row.cache_hit,
    )  # fmt: skip


class Database:
    """A small connection pool that fails fast while PostgreSQL is known to be down."""

    def __init__(self, url: str, connect_timeout: float, retry_after: float) -> None:
        self._url = url
        self._where = describe_url(url)
        self._connect_timeout = connect_timeout
        self._retry_after = retry_after
        self._pool: AsyncConnectionPool | None = None
        self._schema_ready = False
        self._down_until = 0.0
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return self._where

    async def _get_pool(self) -> AsyncConnectionPool:
        async with self._lock:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=4,
                    open=False,
                    timeout=self._connect_timeout,
                    # A connection broken by a server restart is replaced instead of failing a query.
                    check=AsyncConnectionPool.check_connection,
                    kwargs={
                        "connect_timeout": max(1, int(self._connect_timeout)),
                        "autocommit": True,
                        # A lock or a stuck server must not hold the writer or a key check forever.
                        "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                    },
                )
                await pool.open(wait=False)
                self._pool = pool
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if time.monotonic() < self._down_until:
            raise DatabaseUnavailable(f"hub database {self._where} is unreachable (retrying shortly)")
        try:
            pool = await self._get_pool()
            async with pool.connection() as conn:
                if not self._schema_ready:
                    await HUB_MIGRATIONS.amigrate(conn)
                    self._schema_ready = True
                yield conn
        except psycopg.errors.UndefinedTable as exc:
            self._schema_ready = False  # the database was recreated under us: make the tables again next time
            raise DatabaseUnavailable(f"hub database {self._where} lost its tables") from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            self._down_until = time.monotonic() + self._retry_after
            # A fresh pool on the next try: psycopg_pool stops reconnecting after a long outage.
            await self._discard_pool()
            raise DatabaseUnavailable(f"hub database {self._where} is unreachable ({type(exc).__name__})") from exc

    async def _discard_pool(self) -> None:
        async with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=1)

    async def ensure_schema(self) -> None:
        async with self.connection():
            pass

    async def fetch_key(self, key_hash: str) -> tuple[KeyRecord, float] | None:
        """The key and its logged spend, or None when no such key exists."""
        async with self.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(KEY_WITH_SPEND, (key_hash,))
            row = await cursor.fetchone()
        return None if row is None else (key_from_row(row), float(row["spend"]))

    async def fetch_person_key(self, user_id: str) -> str | None:
        """The hash of the person's active key, or None when they have none."""
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT key_hash FROM hub_keys WHERE metadata->>'user_id' = %s AND revoked_at IS NULL", (user_id,)
            )
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def fetch_spend(self, key_hash: str) -> float:
        """What the key's budget holder has spent right now, logged or answered (shared by every instance)."""
        async with self.connection() as conn:
            cursor = await conn.execute(SPEND_OF_HOLDER, (key_hash,))
            row = await cursor.fetchone()
        return float(row[0]) if row else 0.0

    async def record_pending_spend(self, request_id: str, key_hash: str, cost: float) -> None:
        """Counts an answered request's cost before its log row is written (see RECORD_PENDING)."""
        params = {"request_id": request_id, "key_hash": key_hash, "cost": cost}
        async with self.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('hub_spend:' || %s))", (request_id,))
            await conn.execute(RECORD_PENDING, params)

    async def write_usage(self, rows: Sequence[UsageRow]) -> None:
        async with self.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(UPSERT_USAGE, [usage_params(row) for row in rows])

    async def close(self) -> None:
        await self._discard_pool()


def write_usage_sync(url: str, rows: Sequence[UsageRow], connect_timeout: float) -> None:
    """For the last flush at exit, when the event loop is gone."""
    with psycopg.connect(url, connect_timeout=max(1, int(connect_timeout)), autocommit=True) as conn:
        HUB_MIGRATIONS.migrate(conn)
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(UPSERT_USAGE, [usage_params(row) for row in rows])
