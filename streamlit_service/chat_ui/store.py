"""Proxy-only mode's history: one person's conversations in PostgreSQL (the `genailabs` database).

Every query names the owner, so another person's conversation is simply not found. The schema is the shared
migrations' (genailabs_accounts), applied once per process before the first query.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from chat_ui.history import HistoryUnavailable
from chat_ui.schemas import Conversation, ConversationSummary, Facts, GenerationParams, Message, Role
from genailabs_accounts.migrations import migrate

PARAM_COLUMNS = "model, temperature, max_tokens, top_p, system_prompt"
_migrated: set[str] = set()
_migrating = threading.Lock()


def describe_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


def _key(conversation_id: str) -> int | None:
    return int(conversation_id) if conversation_id.isdigit() and len(conversation_id) < 19 else None


def _conversation(row: dict[str, Any]) -> Conversation:
    params = GenerationParams.model_validate({name: row[name] for name in GenerationParams.model_fields})
    return Conversation(
        id=str(row["id"]), title=row["title"], params=params, created_at=row["created_at"], updated_at=row["updated_at"]
    )


def _message(row: dict[str, Any]) -> Message:
    facts = Facts.model_validate(row["facts"]) if row["facts"] else None
    return Message(id=row["id"], role=row["role"], content=row["content"], created_at=row["created_at"], facts=facts)


class LocalHistory:
    """One person's conversations; one short connection per operation (a restarted database costs one call)."""

    name = "database"
    keeps_turns = False

    def __init__(self, url: str, owner_id: str, connect_timeout: float = 3.0) -> None:
        self._url = url
        self._owner = owner_id
        self._connect_timeout = connect_timeout

    @property
    def where(self) -> str:
        return describe_url(self._url)

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with psycopg.connect(
                self._url, connect_timeout=max(1, int(self._connect_timeout)), row_factory=dict_row
            ) as conn:
                if self._url not in _migrated:
                    with _migrating:
                        migrate(conn)
                        _migrated.add(self._url)
                yield conn
        except psycopg.OperationalError:
            raise HistoryUnavailable(f"history database {self.where} is unreachable") from None

    def ping(self) -> None:
        with self._connect() as conn:
            conn.execute("SELECT 1")

    def create(self, title: str, params: GenerationParams, collections: list[str]) -> Conversation:
        """A new conversation; `collections` is for the agent host (proxy-only mode has no documents)."""
        with self._connect() as conn:
            row = conn.execute(
                f"INSERT INTO ui_conversations (owner_id, title, {PARAM_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "RETURNING *",
                (self._owner, title, *params.model_dump().values()),
            ).fetchone()
        assert row is not None
        return _conversation(row)

    def get(self, conversation_id: str) -> Conversation | None:
        key = _key(conversation_id)
        if key is None:
            return None
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM ui_conversations WHERE id = %s AND owner_id = %s", (key, self._owner)
            ).fetchone()
        return None if row is None else _conversation(row)

    def summaries(self, search: str = "", limit: int = 50) -> list[ConversationSummary]:
        """Most recent first; `search` matches titles and message text."""
        query = "SELECT id::text AS id, title, updated_at FROM ui_conversations c WHERE c.owner_id = %s"
        args: list[Any] = [self._owner]
        if search.strip():
            pattern = "%" + search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query += (
                " AND (c.title ILIKE %s OR EXISTS "
                "(SELECT 1 FROM ui_messages m WHERE m.conversation_id = c.id AND m.content ILIKE %s))"
            )
            args += [pattern, pattern]
        query += " ORDER BY updated_at DESC, id DESC LIMIT %s"
        with self._connect() as conn:
            rows = conn.execute(query, [*args, limit]).fetchall()
        return [ConversationSummary.model_validate(row) for row in rows]

    def rename(self, conversation_id: str, title: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE ui_conversations SET title = %s WHERE id = %s AND owner_id = %s",
                (title.strip(), _key(conversation_id), self._owner),
            )

    def update_params(self, conversation_id: str, params: GenerationParams) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE ui_conversations SET model = %s, temperature = %s, max_tokens = %s, top_p = %s, "
                "system_prompt = %s WHERE id = %s AND owner_id = %s",
                (*params.model_dump().values(), _key(conversation_id), self._owner),
            )

    def set_collections(self, conversation_id: str, collections: list[str]) -> None:
        """Nothing to keep: documents need the agent host."""

    def delete(self, conversation_id: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "DELETE FROM ui_conversations WHERE id = %s AND owner_id = %s", (_key(conversation_id), self._owner)
            )

    def messages(self, conversation_id: str) -> list[Message]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT m.* FROM ui_messages m JOIN ui_conversations c ON c.id = m.conversation_id "
                "WHERE c.id = %s AND c.owner_id = %s ORDER BY m.id",
                (_key(conversation_id), self._owner),
            ).fetchall()
        return [_message(row) for row in rows]

    def record(self, conversation_id: str, role: Role, content: str, facts: Facts | None = None) -> Message | None:
        """Keeps a message of the page's turn (the question before it is sent, the answer after)."""
        with self._connect() as conn, conn.transaction():
            row = conn.execute(
                "INSERT INTO ui_messages (conversation_id, role, content, facts) "
                "SELECT c.id, %s, %s, %s FROM ui_conversations c WHERE c.id = %s AND c.owner_id = %s RETURNING *",
                (role, content, Jsonb(facts.model_dump()) if facts else None, _key(conversation_id), self._owner),
            ).fetchone()
            conn.execute("UPDATE ui_conversations SET updated_at = now() WHERE id = %s", (_key(conversation_id),))
        return None if row is None else _message(row)

    def replace_message(self, conversation_id: str, message_id: int, content: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE ui_messages m SET content = %s FROM ui_conversations c WHERE m.id = %s "
                "AND m.conversation_id = c.id AND c.id = %s AND c.owner_id = %s",
                (content, message_id, _key(conversation_id), self._owner),
            )

    def delete_message(self, conversation_id: str, message_id: int) -> None:
        with self._connect() as conn:
            conn.execute(
                "DELETE FROM ui_messages m USING ui_conversations c WHERE m.id = %s "
                "AND m.conversation_id = c.id AND c.id = %s AND c.owner_id = %s",
                (message_id, _key(conversation_id), self._owner),
            )

    def truncate_after(self, conversation_id: str, message_id: int) -> None:
        """Drops every message after `message_id`: regenerate and edit start again from it."""
        with self._connect() as conn:
            conn.execute(
                "DELETE FROM ui_messages m USING ui_conversations c WHERE m.conversation_id = c.id "
                "AND c.id = %s AND c.owner_id = %s AND m.id > %s",
                (_key(conversation_id), self._owner, message_id),
            )
