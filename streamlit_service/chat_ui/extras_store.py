"""What an answer carries beyond its text (sources, agent steps) and each chat's collections, beside the history.

Kept in tables of their own that cascade with ui_messages / ui_conversations, so the history schema stays as it is
and a deleted or regenerated answer takes its sources with it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from chat_ui.rag_models import Citation
from chat_ui.store import HistoryStore, StoreUnavailable

SCHEMA_LOCK_ID = 0x4558_5452
SCHEMA = """
CREATE TABLE IF NOT EXISTS ui_answer_extras (
    message_id  bigint PRIMARY KEY REFERENCES ui_messages (id) ON DELETE CASCADE,
    extras      jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS ui_conversation_collections (
    conversation_id bigint PRIMARY KEY REFERENCES ui_conversations (id) ON DELETE CASCADE,
    collections     text[] NOT NULL
);
"""


class AnswerExtras(BaseModel):
    """The collections an answer searched, the sources it cites, and the agent's steps when an agent answered."""

    collections: list[str] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    agent: str | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.collections or self.citations or self.agent or self.steps)


class ExtrasStore:
    """One short connection per operation, like HistoryStore, on the same database."""

    def __init__(self, history: HistoryStore, url: str, connect_timeout: float = 3.0) -> None:
        self._history = history
        self._url = url
        self._connect_timeout = connect_timeout
        self._schema_ready = False

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        if not self._schema_ready:
            self._history.ping()  # its tables first: ours refer to them
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
            raise StoreUnavailable(f"history database {self._history.where} is unreachable") from None

    def save(self, message_id: int, extras: AnswerExtras) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO ui_answer_extras (message_id, extras) VALUES (%s, %s) "
                "ON CONFLICT (message_id) DO UPDATE SET extras = EXCLUDED.extras",
                (message_id, Jsonb(extras.model_dump(mode="json"))),
            )

    def for_conversation(self, conversation_id: int) -> dict[int, AnswerExtras]:
        """Every answer's extras in the conversation, by message id."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT e.message_id, e.extras FROM ui_answer_extras e JOIN ui_messages m ON m.id = e.message_id "
                "WHERE m.conversation_id = %s",
                (conversation_id,),
            ).fetchall()
        return {int(row["message_id"]): AnswerExtras.model_validate(row["extras"]) for row in rows}

    def collections(self, conversation_id: int) -> list[str]:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT collections FROM ui_conversation_collections WHERE conversation_id = %s", (conversation_id,)
            ).fetchone()
        return list(row["collections"]) if row else []

    def set_collections(self, conversation_id: int, collections: list[str]) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO ui_conversation_collections (conversation_id, collections) VALUES (%s, %s) "
                "ON CONFLICT (conversation_id) DO UPDATE SET collections = EXCLUDED.collections",
                (conversation_id, collections),
            )
