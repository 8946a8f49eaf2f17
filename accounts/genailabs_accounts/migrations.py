"""The `genailabs` database's schema: versioned SQL files applied once each, in order, under one lock."""

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import psycopg

# One advisory lock id for every process that migrates genailabs (host, UI, CLI, make up): they queue on it.
MIGRATION_LOCK_ID = 0x474C_4D31
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
LEDGER = b"""
CREATE TABLE IF NOT EXISTS genailabs_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: bytes


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with the package, oldest first."""
    found = []
    for entry in resources.files("genailabs_accounts").joinpath("migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_bytes()))
    found.sort(key=lambda migration: migration.version)
    if len({migration.version for migration in found}) != len(found):
        raise RuntimeError("two genailabs migrations share a version number")
    return tuple(found)


def _applied(rows: list[Any]) -> set[int]:
    return {int(row[0]) if isinstance(row, tuple) else int(row["version"]) for row in rows}


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Applies the missing migrations in one transaction; the versions it applied (none when up to date)."""
    done: list[int] = []
    with conn.transaction():
        # The lock is held to the end of the transaction, so a second process sees the first one's ledger.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        conn.execute(LEDGER)
        applied = _applied(conn.execute("SELECT version FROM genailabs_migrations").fetchall())
        for migration in migrations():
            if migration.version in applied:
                continue
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO genailabs_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name)
            )
            done.append(migration.version)
    return done


async def amigrate(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """`migrate` on an async connection."""
    done: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        await conn.execute(LEDGER)
        cursor = await conn.execute("SELECT version FROM genailabs_migrations")
        applied = _applied(await cursor.fetchall())
        for migration in migrations():
            if migration.version in applied:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO genailabs_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name)
            )
            done.append(migration.version)
    return done
