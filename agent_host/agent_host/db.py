"""What every PostgreSQL store of the host shares: dict rows, the schema migrated once, outages as one error."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_host.errors import DatabaseUnavailable
from genailabs_accounts.migrations import amigrate
from genailabs_accounts.models import Account

# The databases this process has migrated (by connection string): once each, whichever store gets there first.
# Two first calls at once both run `amigrate`, which is idempotent and serialised by its advisory lock.
_migrated: set[str] = set()


async def _ensure_migrated(pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]) -> None:
    database = pool.conninfo if isinstance(pool.conninfo, str) else repr(pool)  # a callable: this pool's own
    if database not in _migrated:
        await amigrate(conn)  # genailabs_accounts' runner, shared with the UI and the CLI
        _migrated.add(database)


class PgStore:
    """Base of the stores: the schema comes from the shared migrations; subclasses say what is `unavailable`."""

    unavailable = "the database is unreachable"

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        try:
            async with self.pool.connection() as conn:
                await _ensure_migrated(self.pool, conn)
                conn.row_factory = dict_row  # type: ignore[assignment]
                yield conn  # type: ignore[misc]
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable(self.unavailable) from exc


def owner_id(person: Account) -> uuid.UUID:
    """The key a person's rows carry in `owner_id`."""
    return uuid.UUID(str(person.id))
