"""What every PostgreSQL store of the host shares: dict rows, its schema on first use, outages as one error."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_host.errors import DatabaseUnavailable


class PgStore:
    """Base of the stores: subclasses set `schema` (idempotent DDL) and say what is `unavailable` when down."""

    schema = ""
    unavailable = "the database is unreachable"

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._schema_ready = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        try:
            async with self.pool.connection() as conn:
                conn.row_factory = dict_row  # type: ignore[assignment]
                if not self._schema_ready:
                    await conn.execute(self.schema)  # type: ignore[arg-type]  # DDL constants, never user input
                    self._schema_ready = True
                yield conn  # type: ignore[misc]
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable(self.unavailable) from exc
