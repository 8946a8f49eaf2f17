"""A session's notes in PostgreSQL (the `genailabs` database), written and read by the notes tools.

Notes are their session's owner's: another person's session is SessionNotFound.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from agent_host.db import PgStore
from agent_host.errors import SessionNotFound

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

    unavailable = "the notes database is unreachable"

    async def add(self, owner: uuid.UUID, session_id: str, text: str) -> Note:
        key = _parse_id(session_id)
        # The session row's lock orders notes added at once through two replicas, so each gets its own number.
        async with self.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT 1 FROM agent_sessions WHERE id = %s AND owner_id = %s FOR UPDATE", (key, owner)
            )
            if await cursor.fetchone() is None:  # no such session, or not this person's
                raise SessionNotFound(session_id)
            cursor = await conn.execute(
                "INSERT INTO agent_notes (session_id, text) VALUES (%s, %s) RETURNING id, text, created_at, "
                "(SELECT count(*) FROM agent_notes WHERE session_id = %s) + 1 AS number",
                (key, text, key),
            )
            row = await cursor.fetchone()
        if row is None:
            raise SessionNotFound(session_id)
        return Note(**row)

    async def list_notes(self, owner: uuid.UUID, session_id: str) -> list[Note]:
        key = _parse_id(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute("SELECT 1 FROM agent_sessions WHERE id = %s AND owner_id = %s", (key, owner))
            if await cursor.fetchone() is None:
                raise SessionNotFound(session_id)
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
