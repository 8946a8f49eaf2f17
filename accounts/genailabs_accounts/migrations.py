"""The `genailabs` database's schema: versioned SQL files applied once each, in order, under one lock.

The runner is the hub's (hub.schema), shared so both databases change the same way.
"""

from typing import Any

import psycopg

from hub.schema import Migration, MigrationSet

# One advisory lock id for every process that migrates genailabs (host, UI, CLI, make up): they queue on it.
MIGRATION_LOCK_ID = 0x474C_4D31
GENAILABS_MIGRATIONS = MigrationSet("genailabs_accounts", "genailabs_migrations", MIGRATION_LOCK_ID)


def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with the package, oldest first."""
    return GENAILABS_MIGRATIONS.migrations


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Applies the missing migrations in one transaction; the versions it applied (none when up to date)."""
    return GENAILABS_MIGRATIONS.migrate(conn)


async def amigrate(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """`migrate` on an async connection."""
    return await GENAILABS_MIGRATIONS.amigrate(conn)
