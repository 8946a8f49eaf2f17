"""A session's notes in PostgreSQL (the `genailabs` database), written and read by the notes tools."""

import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg

from agent_host.db import PgStore
from agent_host.errors import SessionNotFound
from agent_host.sessions.store import SCHEMA as SESSIONS_SCHEMA

SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_notes (
    id bigserial PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES agent_sessions(id) ON DELETE CASCADE,
    text text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_notes_session ON agent_notes (session_id, id);
"""
MAX_NOTES_LISTED = 100


@dataclass(frozen=True)
class Note:
    id: int
    # The note's place in its session (1, 2, ...): what the model and the user see, not the table's global id.
    number: int
    text: str
    created_at: datetime


class NotesStore(PgStore):
    """All notes SQL; an unknown session is SessionNotFound, an outage DatabaseUnavailable."""

    # Notes belong to a session and go with it: the sessions' tables are created first for the reference.
    schema = SESSIONS_SCHEMA + SCHEMA
    unavailable = "the notes database is unreachable"

    async def add(self, session_id: str, text: str) -> Note:
        key = _parse_id(session_id)
        try:
            async with self.connection() as conn:
                cursor = await conn.execute(
                    "WITH added AS (INSERT INTO agent_notes (session_id, text) VALUES (%s, %s) "
                    "RETURNING id, text, created_at) SELECT added.*, "
                    "(SELECT count(*) FROM agent_notes WHERE session_id = %s) + 1 AS number FROM added",
                    (key, text, key),
                )
                row = await cursor.fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise SessionNotFound(session_id) from None
        assert row is not None
        return Note(**row)

    async def list_notes(self, session_id: str) -> list[Note]:
        key = _parse_id(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, row_number() OVER (ORDER BY id) AS number, text, created_at FROM agent_notes "
                "WHERE session_id = %s ORDER BY id LIMIT %s",
                (key, MAX_NOTES_LISTED),
            )
            rows = await cursor.fetchall()
        return [Note(**row) for row in rows]


def _parse_id(session_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(session_id)
    except ValueError:
        raise SessionNotFound(session_id) from None
