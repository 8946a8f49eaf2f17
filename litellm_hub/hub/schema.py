"""Versioned migrations: SQL files applied once each, in order, under one advisory lock per database.

The hub's tables (`hub/migrations/`) and the genailabs database's (genailabs_accounts) both go through it:
every process that may start first (proxy instances, the key CLI, the agent host, the UI) runs `migrate`,
and they queue on the lock, so instances starting together never race on a CREATE.
"""

import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: bytes


@dataclass(frozen=True)
class MigrationSet:
    """The migrations shipped in `<package>/migrations/*.sql`, recorded in the table `ledger`."""

    package: str
    ledger: str
    lock_id: int

    @cached_property
    def migrations(self) -> tuple[Migration, ...]:
        found = []
        for entry in resources.files(self.package).joinpath("migrations").iterdir():
            match = _FILE_NAME.match(entry.name)
            if match:
                found.append(Migration(int(match.group(1)), match.group(2), entry.read_bytes()))
        found.sort(key=lambda migration: migration.version)
        if len({migration.version for migration in found}) != len(found):
            raise RuntimeError(f"two {self.package} migrations share a version number")
        return tuple(found)

    def _ledger_ddl(self) -> sql.Composed:
        return sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, name text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(self.ledger))

    def _applied_query(self) -> sql.Composed:
        return sql.SQL("SELECT version FROM {}").format(sql.Identifier(self.ledger))

    def _record(self) -> sql.Composed:
        return sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(sql.Identifier(self.ledger))

    def migrate(self, conn: psycopg.Connection[Any]) -> list[int]:
        """Applies the missing migrations in one transaction; the versions it applied (none when up to date)."""
        done: list[int] = []
        with conn.transaction():
            # The lock is held to the end of the transaction, so a second process sees the first one's ledger.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_id,))
            conn.execute(self._ledger_ddl())
            applied = _versions(conn.execute(self._applied_query()).fetchall())
            for migration in self.migrations:
                if migration.version not in applied:
                    conn.execute(migration.sql)
                    conn.execute(self._record(), (migration.version, migration.name))
                    done.append(migration.version)
        return done

    async def amigrate(self, conn: psycopg.AsyncConnection[Any]) -> list[int]:
        """`migrate` on an async connection."""
        done: list[int] = []
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_id,))
            await conn.execute(self._ledger_ddl())
            cursor = await conn.execute(self._applied_query())
            applied = _versions(await cursor.fetchall())
            for migration in self.migrations:
                if migration.version not in applied:
                    await conn.execute(migration.sql)
                    await conn.execute(self._record(), (migration.version, migration.name))
                    done.append(migration.version)
        return done


def _versions(rows: list[Any]) -> set[int]:
    return {int(row[0]) if isinstance(row, tuple) else int(row["version"]) for row in rows}


# The hub's own tables in the `litellm` database. The lock id is the one the hub's DDL always took.
HUB_MIGRATIONS = MigrationSet("hub", "hub_migrations", 0x4855_4221)
