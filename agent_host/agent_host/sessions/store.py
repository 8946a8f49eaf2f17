"""Sessions and their messages in PostgreSQL (the `genailabs` database)."""

import uuid
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from agent_host.db import PgStore
from agent_host.errors import SessionExists, SessionNotFound
from agent_host.schemas import MessagePublic, SessionCreate, SessionPublic, SessionUpdate

SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_sessions (
    id uuid PRIMARY KEY,
    title text NOT NULL,
    model text,
    system_prompt text,
    summary text,
    summarised_upto bigint NOT NULL DEFAULT 0,
    summarised_messages integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS agent_messages (
    id bigserial PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES agent_sessions(id) ON DELETE CASCADE,
    role text NOT NULL,
    content text NOT NULL,
    tokens integer NOT NULL,
    incomplete boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS agent_messages_session ON agent_messages (session_id, id);
-- RAG collections the session answers from (issue 5); added to tables created before it existed.
ALTER TABLE agent_sessions ADD COLUMN IF NOT EXISTS collections text[] NOT NULL DEFAULT '{}';
"""

SESSION_COLUMNS = """s.id::text AS id, s.title, s.model, s.system_prompt, s.collections, s.summary,
    s.summarised_messages, s.created_at, s.updated_at,
    (SELECT count(*) FROM agent_messages m WHERE m.session_id = s.id) AS message_count"""


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    content: str
    tokens: int


@dataclass(frozen=True)
class NewMessage:
    role: str
    content: str
    tokens: int
    incomplete: bool = False


class SessionStore(PgStore):
    """All SQL lives here; a database outage surfaces as DatabaseUnavailable."""

    schema = SCHEMA
    unavailable = "the session database is unreachable"

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")

    async def create(self, body: SessionCreate) -> SessionPublic:
        session_id = body.id or uuid.uuid4()
        async with self.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO agent_sessions (id, title, model, system_prompt, collections) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (session_id, body.title, body.model, body.system_prompt, body.collections),
            )
        if cursor.rowcount == 0:
            raise SessionExists(str(session_id))
        return await self.get(str(session_id))

    async def get(self, session_id: str) -> SessionPublic:
        key = _parse_id(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute(f"SELECT {SESSION_COLUMNS} FROM agent_sessions s WHERE s.id = %s", (key,))
            row = await cursor.fetchone()
        if row is None:
            raise SessionNotFound(session_id)
        return SessionPublic(**row)

    async def list_sessions(self, limit: int = 100) -> list[SessionPublic]:
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM agent_sessions s ORDER BY s.updated_at DESC LIMIT %s", (limit,)
            )
            rows = await cursor.fetchall()
        return [SessionPublic(**row) for row in rows]

    async def update(self, session_id: str, body: SessionUpdate) -> SessionPublic:
        changes = body.model_dump(exclude_unset=True)
        key = _parse_id(session_id)
        async with self.connection() as conn:
            assignments = "".join(f"{column} = %({column})s, " for column in changes)
            cursor = await conn.execute(
                f"UPDATE agent_sessions SET {assignments}updated_at = now() WHERE id = %(id)s",
                {**changes, "id": key},
            )
        if cursor.rowcount == 0:
            raise SessionNotFound(session_id)
        return await self.get(session_id)

    async def delete(self, session_id: str) -> None:
        key = _parse_id(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute("DELETE FROM agent_sessions WHERE id = %s", (key,))
        if cursor.rowcount == 0:
            raise SessionNotFound(session_id)

    async def messages(self, session_id: str) -> list[MessagePublic]:
        await self.get(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, role, content, tokens, incomplete, created_at FROM agent_messages "
                "WHERE session_id = %s ORDER BY id",
                (_parse_id(session_id),),
            )
            rows = await cursor.fetchall()
        return [MessagePublic(**row) for row in rows]

    async def history(self, session_id: str) -> tuple[SessionPublic, list[StoredMessage]]:
        """The session and the messages its summary does not cover yet, oldest first."""
        session = await self.get(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, role, content, tokens FROM agent_messages m WHERE m.session_id = %s "
                "AND m.id > (SELECT summarised_upto FROM agent_sessions WHERE id = %s) ORDER BY m.id",
                (_parse_id(session_id), _parse_id(session_id)),
            )
            rows = await cursor.fetchall()
        return session, [StoredMessage(**row) for row in rows]

    async def append(self, session_id: str, messages: list[NewMessage]) -> None:
        key = _parse_id(session_id)
        async with self.connection() as conn, conn.transaction():
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO agent_messages (session_id, role, content, tokens, incomplete) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    [(key, m.role, m.content, m.tokens, m.incomplete) for m in messages],
                )
            await conn.execute("UPDATE agent_sessions SET updated_at = now() WHERE id = %s", (key,))

    async def save_summary(self, session_id: str, summary: str, upto_message_id: int, added: int) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "UPDATE agent_sessions SET summary = %s, summarised_upto = %s, "
                "summarised_messages = summarised_messages + %s WHERE id = %s",
                (summary, upto_message_id, added, _parse_id(session_id)),
            )


def _parse_id(session_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(session_id)
    except ValueError:
        raise SessionNotFound(session_id) from None


async def open_pool(url: str, timeout: float) -> AsyncConnectionPool:
    """Opens without waiting: the host starts (and chats without sessions) while the database is down."""
    pool = AsyncConnectionPool(
        url, min_size=1, max_size=10, timeout=timeout, open=False, kwargs={"connect_timeout": max(1, int(timeout))}
    )
    await pool.open(wait=False)
    return pool
