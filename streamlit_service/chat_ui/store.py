"""Conversation history in PostgreSQL (the `genailabs` database); the schema is created on start."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from chat_ui.schemas import Conversation, ConversationSummary, Facts, GenerationParams, Message, Role

SCHEMA_LOCK_ID = 0x4348_4154
SCHEMA = """
CREATE TABLE IF NOT EXISTS ui_conversations (
    id            bigserial PRIMARY KEY,
    title         text NOT NULL,
    model         text NOT NULL,
    temperature   double precision NOT NULL,
    max_tokens    integer NOT NULL,
    top_p         double precision NOT NULL,
    system_prompt text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ui_conversations_updated ON ui_conversations (updated_at DESC);
CREATE TABLE IF NOT EXISTS ui_messages (
    id              bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES ui_conversations (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL,
    facts           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ui_messages_conversation ON ui_messages (conversation_id, id);
"""
PARAM_COLUMNS = "model, temperature, max_tokens, top_p, system_prompt"


class StoreUnavailable(RuntimeError):
    """The history database did not answer; the message never carries credentials."""


def describe_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def _conversation(row: dict[str, Any]) -> Conversation:
    params = GenerationParams.model_validate({name: row[name] for name in GenerationParams.model_fields})
    return Conversation(
        id=row["id"], title=row["title"], params=params, created_at=row["created_at"], updated_at=row["updated_at"]
    )


def _message(row: dict[str, Any]) -> Message:
    facts = Facts.model_validate(row["facts"]) if row["facts"] else None
    return Message(id=row["id"], role=row["role"], content=row["content"], created_at=row["created_at"], facts=facts)


class HistoryStore:
    """One short connection per operation: a restarted database costs one failed call, not a stale pool."""

    def __init__(self, url: str, connect_timeout: float = 3.0) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._schema_ready = False

    @property
    def where(self) -> str:
        return describe_url(self._url)

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with psycopg.connect(
                self._url, connect_timeout=max(1, int(self._connect_timeout)), row_factory=dict_row
            ) as conn:
                if not self._schema_ready:
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
                        conn.execute(SCHEMA)
                    self._schema_ready = True
                yield conn
        except psycopg.OperationalError:
            raise StoreUnavailable(f"history database {self.where} is unreachable") from None

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute("SELECT 1")

    def create(self, title: str, params: GenerationParams) -> Conversation:
        with self._connect() as conn:
            row = conn.execute(
                f"INSERT INTO ui_conversations (title, {PARAM_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
                (title, *params.model_dump().values()),
            ).fetchone()
        assert row is not None
        return _conversation(row)

    def get(self, conversation_id: int) -> Conversation | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM ui_conversations WHERE id = %s", (conversation_id,)).fetchone()
        return None if row is None else _conversation(row)

    def summaries(self, search: str = "", limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        """Most recent first; `search` matches titles and message text."""
        query = "SELECT id, title, updated_at FROM ui_conversations c"
        args: list[Any] = []
        if search.strip():
            pattern = "%" + search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query += (
                " WHERE c.title ILIKE %s OR EXISTS "
                "(SELECT 1 FROM ui_messages m WHERE m.conversation_id = c.id AND m.content ILIKE %s)"
            )
            args += [pattern, pattern]
        query += " ORDER BY updated_at DESC, id DESC LIMIT %s OFFSET %s"
        with self._connect() as conn:
            rows = conn.execute(query, [*args, limit, offset]).fetchall()
        return [ConversationSummary.model_validate(row) for row in rows]

    def count(self) -> int:
        with self._connect() as conn:
            row = conn.execute("SELECT count(*) AS n FROM ui_conversations").fetchone()
        return int(row["n"]) if row else 0

    def rename(self, conversation_id: int, title: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE ui_conversations SET title = %s WHERE id = %s", (title.strip(), conversation_id))

    def update_params(self, conversation_id: int, params: GenerationParams) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE ui_conversations SET model = %s, temperature = %s, max_tokens = %s, top_p = %s, "
                "system_prompt = %s WHERE id = %s",
                (*params.model_dump().values(), conversation_id),
            )

    def delete(self, conversation_id: int) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM ui_conversations WHERE id = %s", (conversation_id,))

    def messages(self, conversation_id: int) -> list[Message]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM ui_messages WHERE conversation_id = %s ORDER BY id", (conversation_id,)
            ).fetchall()
        return [_message(row) for row in rows]

    def add_message(self, conversation_id: int, role: Role, content: str, facts: Facts | None = None) -> Message:
        with self._connect() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO ui_messages (conversation_id, role, content, facts) VALUES (%s, %s, %s, %s) RETURNING *",
                (conversation_id, role, content, Jsonb(facts.model_dump()) if facts else None),
            ).fetchone()
            conn.execute("UPDATE ui_conversations SET updated_at = now() WHERE id = %s", (conversation_id,))
        assert row is not None
        return _message(row)

    def edit_message(self, message_id: int, content: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE ui_messages SET content = %s WHERE id = %s", (content, message_id))

    def delete_messages_after(self, conversation_id: int, message_id: int) -> None:
        """Drops every message after `message_id`: regenerate and edit-and-resend start again from it."""
        with self._connect() as conn:
            conn.execute(
                "DELETE FROM ui_messages WHERE conversation_id = %s AND id > %s", (conversation_id, message_id)
            )
