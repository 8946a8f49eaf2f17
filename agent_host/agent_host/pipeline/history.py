"""The load step of a turn: the person's session (history, summary, collections), or the client's own history."""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent_host.context.budget import HistoryItem
from agent_host.db import owner_id
from agent_host.errors import DatabaseUnavailable
from agent_host.schemas import ChatCompletionRequest
from agent_host.sessions.errors import NothingToRegenerate
from agent_host.sessions.store import SessionStore
from genailabs_accounts.models import Account

log = logging.getLogger(__name__)


@dataclass
class LoadedHistory:
    system: list[dict[str, Any]]
    turn: list[dict[str, Any]]
    history: list[HistoryItem] = field(default_factory=list)
    summary: str | None = None
    session_id: str | None = None  # set when the turn will be stored with its session
    warning: str | None = None
    collections: list[str] = field(default_factory=list)  # the session's RAG collections


async def load_history(
    store: SessionStore,
    request: ChatCompletionRequest,
    person: Account,
    system: list[dict[str, Any]],
    turn: list[dict[str, Any]],
    count_content: Callable[[dict[str, Any]], int],
) -> LoadedHistory:
    """The person's session's history and summary; a stateless client's own earlier messages; or nothing.

    With `regenerate`, the turn is the session's last message (the user's), so what the model is sent is
    exactly the stored history.
    """
    if request.session_id is not None:
        try:
            session, stored = await store.history(owner_id(person), request.session_id)
        except DatabaseUnavailable:
            if request.regenerate:  # the history is the whole request: nothing to answer without it
                raise
            log.warning("session %s: database unavailable, answering without history", request.session_id)
            warning = "session database unavailable: answered without history, and this turn is not stored"
            return LoadedHistory(system, turn, warning=warning)
        if session.system_prompt and not system:
            system = [{"role": "system", "content": session.system_prompt}]
        history = [HistoryItem(m.id, m.role, m.content, m.tokens) for m in stored]
        if request.regenerate:
            if not history or history[-1].role != "user":
                raise NothingToRegenerate(
                    f"session {request.session_id} does not end with a user message to answer: delete the "
                    "messages after it first (DELETE /sessions/{id}/messages?after=<message id>)"
                )
            turn = [history.pop().as_message()]
        loaded = LoadedHistory(system, turn, history, session.summary, request.session_id)
        loaded.collections = list(session.collections)
        return loaded
    if len(turn) <= 1:
        return LoadedHistory(system, turn)
    # A stateless client sends its own history: the last user turn is new, the rest may be trimmed.
    users = [i for i, m in enumerate(turn) if m["role"] == "user"]
    last_user = users[-1] if users else len(turn) - 1
    history = [
        HistoryItem(-i - 1, str(m["role"]), str(m.get("content") or ""), count_content(m))
        for i, m in enumerate(turn[:last_user])
    ]
    return LoadedHistory(system, turn[last_user:], history)
