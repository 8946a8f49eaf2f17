"""Sessions and their messages in PostgreSQL (the `genailabs` database), each session one person's.

Every query names the owner: someone else's session is SessionNotFound, exactly like one that does not exist.
The tables come from genailabs_accounts' migrations (0001_baseline, 0002_accounts).

Several host replicas may write one session at once, so nothing here relies on the process: every write that
depends on what the session holds locks the session row (`FOR UPDATE`, or the UPDATE that touches it) for its
transaction. Appends, edits, truncations and summaries of one session therefore happen one after another, and
message ids, drawn from the table's sequence inside that lock, order a session's messages as they were stored,
each turn's messages next to each other. Reads that combine the session and its messages read one snapshot.
"""

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent_host.db import PgStore
from agent_host.errors import SessionExists, SessionNotFound
from agent_host.schemas import MessagePublic, SessionCreate, SessionPublic, SessionUpdate
from agent_host.sessions.errors import AnswerSuperseded, MessageNotFound

log = logging.getLogger(__name__)

SESSION_COLUMNS = """s.id::text AS id, s.title, s.model, s.system_prompt, s.collections, s.summary,
    s.summarised_messages, s.created_at, s.updated_at,
    (SELECT count(*) FROM agent_messages m WHERE m.session_id = s.id) AS message_count"""
MESSAGE_COLUMNS = "id, role, content, tokens, incomplete, metadata, created_at"
# Forgetting the running summary: the model is then sent the stored messages themselves.
DROP_SUMMARY = "summary = NULL, summarised_upto = 0, summarised_messages = 0"


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
    # An answer's citations and context facts (agent_messages.metadata), returned with the message.
    metadata: dict[str, Any] = field(default_factory=dict)


class SessionStore(PgStore):
    """All SQL lives here; a database outage surfaces as DatabaseUnavailable."""

    unavailable = "the session database is unreachable"

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")

    async def create(self, owner: uuid.UUID, body: SessionCreate) -> SessionPublic:
        session_id = body.id or uuid.uuid4()
        async with self.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO agent_sessions (id, title, model, system_prompt, collections, owner_id) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (session_id, body.title, body.model, body.system_prompt, body.collections, owner),
            )
        if cursor.rowcount == 0:
            raise SessionExists(str(session_id))
        return await self.get(owner, str(session_id))

    async def get(self, owner: uuid.UUID, session_id: str) -> SessionPublic:
        key = _parse_id(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM agent_sessions s WHERE s.id = %s AND s.owner_id = %s", (key, owner)
            )
            row = await cursor.fetchone()
        if row is None:
            raise SessionNotFound(session_id)
        return SessionPublic(**row)

    async def list_sessions(self, owner: uuid.UUID, limit: int = 100) -> list[SessionPublic]:
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM agent_sessions s WHERE s.owner_id = %s "
                "ORDER BY s.updated_at DESC LIMIT %s",
                (owner, limit),
            )
            rows = await cursor.fetchall()
        return [SessionPublic(**row) for row in rows]

    async def update(self, owner: uuid.UUID, session_id: str, body: SessionUpdate) -> SessionPublic:
        changes = body.model_dump(exclude_unset=True)
        key = _parse_id(session_id)
        async with self.connection() as conn:
            assignments = "".join(f"{column} = %({column})s, " for column in changes)
            cursor = await conn.execute(
                f"UPDATE agent_sessions SET {assignments}updated_at = now() WHERE id = %(id)s AND owner_id = %(owner)s",
                {**changes, "id": key, "owner": owner},
            )
        if cursor.rowcount == 0:
            raise SessionNotFound(session_id)
        return await self.get(owner, session_id)

    async def delete(self, owner: uuid.UUID, session_id: str) -> None:
        key = _parse_id(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute("DELETE FROM agent_sessions WHERE id = %s AND owner_id = %s", (key, owner))
        if cursor.rowcount == 0:
            raise SessionNotFound(session_id)

    async def messages(self, owner: uuid.UUID, session_id: str) -> list[MessagePublic]:
        key = _parse_id(session_id)
        async with self.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM agent_messages WHERE session_id = %s "
                "AND EXISTS (SELECT 1 FROM agent_sessions WHERE id = %s AND owner_id = %s) ORDER BY id",
                (key, key, owner),
            )
            rows = await cursor.fetchall()
        if not rows:
            await self.get(owner, session_id)  # none, or no such session of the owner's
        return [MessagePublic(**row) for row in rows]

    async def history(self, owner: uuid.UUID, session_id: str) -> tuple[SessionPublic, list[StoredMessage]]:
        """The session and the messages its summary does not cover yet, oldest first.

        One snapshot: a summary saved through another replica in between must not pair the old summary with
        the messages after the new one (the messages between would be in neither)."""
        key = _parse_id(session_id)
        async with self.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor = await conn.execute(
                f"SELECT {SESSION_COLUMNS}, s.summarised_upto FROM agent_sessions s "
                "WHERE s.id = %s AND s.owner_id = %s",
                (key, owner),
            )
            row = await cursor.fetchone()
            if row is None:
                raise SessionNotFound(session_id)
            cursor = await conn.execute(
                "SELECT id, role, content, tokens FROM agent_messages WHERE session_id = %s AND id > %s ORDER BY id",
                (key, row.pop("summarised_upto")),
            )
            rows = await cursor.fetchall()
        return SessionPublic(**row), [StoredMessage(**message) for message in rows]

    async def append(self, owner: uuid.UUID, session_id: str, messages: list[NewMessage]) -> None:
        """Stores a turn's messages together, after everything stored before them.

        A lone answer is a regeneration's: it answers the user's message that ended the history, so if that is no
        longer the last message (another replica answered it first, or stored a newer turn) it is not stored
        (AnswerSuperseded), rather than become a second answer or one that answers the wrong turn."""
        key = _parse_id(session_id)
        async with self.connection() as conn, conn.transaction():
            # The row lock (held to commit) orders this against every other write to the session, on any replica.
            touched = await conn.execute(
                "UPDATE agent_sessions SET updated_at = now() WHERE id = %s AND owner_id = %s", (key, owner)
            )
            if touched.rowcount == 0:  # deleted since the turn began, or never the owner's
                raise SessionNotFound(session_id)
            if len(messages) == 1 and messages[0].role == "assistant":
                cursor = await conn.execute(
                    "SELECT role FROM agent_messages WHERE session_id = %s ORDER BY id DESC LIMIT 1", (key,)
                )
                last = await cursor.fetchone()
                if last is None or last["role"] != "user":
                    raise AnswerSuperseded(session_id)
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO agent_messages (session_id, role, content, tokens, incomplete, metadata) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    [(key, m.role, m.content, m.tokens, m.incomplete, Jsonb(m.metadata)) for m in messages],
                )

    async def save_summary(
        self, owner: uuid.UUID, session_id: str, summary: str, upto_message_id: int, added: int
    ) -> bool:
        """Saves a summary that folds the `added` messages after the current summary, up to `upto_message_id`,
        into it; False (nothing saved) when the session moved on meanwhile: another replica saved a summary,
        or a message it covers was deleted or the summary dropped. The next long turn summarises again."""
        key = _parse_id(session_id)
        async with self.connection() as conn, conn.transaction():
            covered = await _lock_session(conn, owner, session_id)
            cursor = await conn.execute(
                "SELECT count(*) AS folded FROM agent_messages WHERE session_id = %s AND id > %s AND id <= %s",
                (key, covered, upto_message_id),
            )
            row = await cursor.fetchone()
            if upto_message_id <= covered or row is None or row["folded"] != added:
                log.info("session %s: a summary made meanwhile is kept; this one is dropped", session_id)
                return False
            await conn.execute(
                "UPDATE agent_sessions SET summary = %s, summarised_upto = %s, "
                "summarised_messages = summarised_messages + %s WHERE id = %s",
                (summary, upto_message_id, added, key),
            )
        return True

    # Editing the one history. A change at or below what the summary covers drops the summary.

    async def replace_message(
        self, owner: uuid.UUID, session_id: str, message_id: int, content: str, tokens: int
    ) -> MessagePublic:
        """The message's new content (complete now, by definition); its metadata stays."""
        async with self.connection() as conn, conn.transaction():
            covered = await _lock_session(conn, owner, session_id)
            cursor = await conn.execute(
                "UPDATE agent_messages SET content = %s, tokens = %s, incomplete = false "
                f"WHERE id = %s AND session_id = %s RETURNING {MESSAGE_COLUMNS}",
                (content, tokens, message_id, _parse_id(session_id)),
            )
            row = await cursor.fetchone()
            if row is None:
                raise MessageNotFound(session_id, message_id)
            await _touch(conn, session_id, drop_summary=message_id <= covered)
        return MessagePublic(**row)

    async def delete_message(self, owner: uuid.UUID, session_id: str, message_id: int) -> None:
        async with self.connection() as conn, conn.transaction():
            covered = await _lock_session(conn, owner, session_id)
            cursor = await conn.execute(
                "DELETE FROM agent_messages WHERE id = %s AND session_id = %s", (message_id, _parse_id(session_id))
            )
            if cursor.rowcount == 0:
                raise MessageNotFound(session_id, message_id)
            await _touch(conn, session_id, drop_summary=message_id <= covered)

    async def delete_after(self, owner: uuid.UUID, session_id: str, message_id: int) -> int:
        """Deletes every message after `message_id` (which stays); how many were deleted."""
        key = _parse_id(session_id)
        async with self.connection() as conn, conn.transaction():
            covered = await _lock_session(conn, owner, session_id)
            cursor = await conn.execute(
                "SELECT 1 FROM agent_messages WHERE id = %s AND session_id = %s", (message_id, key)
            )
            if await cursor.fetchone() is None:
                raise MessageNotFound(session_id, message_id)
            cursor = await conn.execute(
                "DELETE FROM agent_messages WHERE session_id = %s AND id > %s", (key, message_id)
            )
            deleted = cursor.rowcount
            # Deleting messages the summary covers (ids up to `covered`) makes the summary tell of them.
            await _touch(conn, session_id, drop_summary=deleted > 0 and message_id < covered)
        return deleted


async def _lock_session(conn: psycopg.AsyncConnection[Any], owner: uuid.UUID, session_id: str) -> int:
    """Locks the owner's session row for the edit (edits queue on it); its summarised_upto."""
    cursor = await conn.execute(
        "SELECT summarised_upto FROM agent_sessions WHERE id = %s AND owner_id = %s FOR UPDATE",
        (_parse_id(session_id), owner),
    )
    row = await cursor.fetchone()
    if row is None:
        raise SessionNotFound(session_id)
    return int(row["summarised_upto"])


async def _touch(conn: psycopg.AsyncConnection[Any], session_id: str, drop_summary: bool) -> None:
    reset = f", {DROP_SUMMARY}" if drop_summary else ""
    await conn.execute(f"UPDATE agent_sessions SET updated_at = now(){reset} WHERE id = %s", (_parse_id(session_id),))


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
