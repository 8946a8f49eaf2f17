"""Where a person's conversations live: one interface, two places.

Agent-host mode: the host's sessions are the only copy (HostHistory, below); the host stores each exchange
itself, and the page re-reads a conversation from `GET /sessions/{id}/messages` after every change.
Proxy-only mode: the UI's own tables, one person's rows (store.LocalHistory); the page records each exchange.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from chat_ui.host import HostClient, HostProblem
from chat_ui.host_models import AnswerMeta, HostMessage, SessionInfo
from chat_ui.schemas import Conversation, ConversationSummary, Facts, GenerationParams, Message, Role

# How many sessions a title-or-text search reads the messages of (the host has no search of its own).
SEARCH_DEPTH = 200


class HistoryUnavailable(RuntimeError):
    """The history did not answer; the message is safe to show (never a credential)."""


class History(Protocol):
    """A person's conversations; another person's is simply not found."""

    name: str  # what the status panel calls it
    keeps_turns: bool  # True: the backend stores each exchange itself; `record` keeps nothing

    def ping(self) -> None: ...
    def summaries(self, search: str = "", limit: int = 50) -> list[ConversationSummary]: ...
    def get(self, conversation_id: str) -> Conversation | None: ...
    def create(self, title: str, params: GenerationParams, collections: list[str]) -> Conversation: ...
    def rename(self, conversation_id: str, title: str) -> None: ...
    def update_params(self, conversation_id: str, params: GenerationParams) -> None: ...
    def set_collections(self, conversation_id: str, collections: list[str]) -> None: ...
    def delete(self, conversation_id: str) -> None: ...
    def messages(self, conversation_id: str) -> list[Message]: ...
    def record(self, conversation_id: str, role: Role, content: str, facts: Facts | None = None) -> Message | None: ...
    def replace_message(self, conversation_id: str, message_id: int, content: str) -> None: ...
    def delete_message(self, conversation_id: str, message_id: int) -> None: ...
    def truncate_after(self, conversation_id: str, message_id: int) -> None: ...


def message_of(stored: HostMessage) -> Message:
    """A stored message as the page shows it; an answer's facts are what the host kept of its context."""
    meta = AnswerMeta.model_validate(stored.metadata) if stored.metadata else None
    facts = None
    if meta is not None and meta.context is not None:
        context = meta.context
        facts = Facts(
            context_tokens=context.prompt_tokens,
            context_window=context.window,
            summarised_messages=context.summarised_messages,
            trimmed_messages=context.trimmed_messages,
            cached=context.cached,
            stopped=stored.incomplete,
        )
    return Message(
        id=stored.id,
        role=stored.role,
        content=stored.content,
        created_at=stored.created_at,
        facts=facts,
        incomplete=stored.incomplete,
        meta=meta,
    )


class HostHistory:
    """The person's sessions on the agent host.

    The host keeps a session's model, system prompt and collections; temperature, max tokens and top-p are not
    part of a session, so they live in `sampling` (the page's state) per conversation.
    """

    name = "agent host"
    keeps_turns = True

    def __init__(self, client: HostClient, default_model: str, sampling: dict[str, dict[str, Any]]) -> None:
        self._client = client
        self._default_model = default_model
        self._sampling = sampling

    def _conversation(self, session: SessionInfo) -> Conversation:
        params = GenerationParams(
            model=session.model or self._default_model,
            system_prompt=session.system_prompt or "",
            **self._sampling.get(session.id, {}),
        )
        return Conversation(
            id=session.id,
            title=session.title,
            params=params,
            created_at=session.created_at,
            updated_at=session.updated_at,
            collections=session.collections,
        )

    def _keep_sampling(self, conversation_id: str, params: GenerationParams) -> None:
        self._sampling[conversation_id] = params.model_dump(include={"temperature", "max_tokens", "top_p"})

    def ping(self) -> None:
        try:
            self._client.health(timeout=3.0)
        except HostProblem as exc:
            raise HistoryUnavailable(exc.message) from None

    def summaries(self, search: str = "", limit: int = 50) -> list[ConversationSummary]:
        needle = search.strip().lower()
        with _unavailable():
            sessions = self._client.sessions(limit if not needle else max(limit, SEARCH_DEPTH))
            if needle:
                sessions = [s for s in sessions if needle in s.title.lower() or self._mentions(s, needle)][:limit]
        return [ConversationSummary(id=s.id, title=s.title, updated_at=s.updated_at) for s in sessions]

    def _mentions(self, session: SessionInfo, needle: str) -> bool:
        if not session.message_count:
            return False
        return any(needle in message.content.lower() for message in self._client.messages(session.id))

    def get(self, conversation_id: str) -> Conversation | None:
        with _unavailable():
            session = self._client.session(conversation_id)
        return None if session is None else self._conversation(session)

    def create(self, title: str, params: GenerationParams, collections: list[str]) -> Conversation:
        with _unavailable():
            session = self._client.create_session(
                title=title, model=params.model, system_prompt=params.system_prompt, collections=collections
            )
        self._keep_sampling(session.id, params)
        return self._conversation(session)

    def rename(self, conversation_id: str, title: str) -> None:
        with _unavailable():
            self._client.update_session(conversation_id, title=title.strip())

    def update_params(self, conversation_id: str, params: GenerationParams) -> None:
        self._keep_sampling(conversation_id, params)
        with _unavailable():
            self._client.update_session(conversation_id, model=params.model, system_prompt=params.system_prompt)

    def set_collections(self, conversation_id: str, collections: list[str]) -> None:
        with _unavailable():
            self._client.update_session(conversation_id, collections=collections)

    def delete(self, conversation_id: str) -> None:
        with _unavailable():
            self._client.delete_session(conversation_id)
        self._sampling.pop(conversation_id, None)

    def messages(self, conversation_id: str) -> list[Message]:
        with _unavailable():
            return [message_of(stored) for stored in self._client.messages(conversation_id)]

    def record(self, conversation_id: str, role: Role, content: str, facts: Facts | None = None) -> Message | None:
        """Nothing: the host stores the question and its answer together when it answers."""
        return None

    def replace_message(self, conversation_id: str, message_id: int, content: str) -> None:
        with _unavailable():
            self._client.replace_message(conversation_id, message_id, content)

    def delete_message(self, conversation_id: str, message_id: int) -> None:
        with _unavailable():
            self._client.delete_message(conversation_id, message_id)

    def truncate_after(self, conversation_id: str, message_id: int) -> None:
        with _unavailable():
            self._client.truncate_after(conversation_id, message_id)


@contextmanager
def _unavailable() -> Iterator[None]:
    """Turns the host's problems into HistoryUnavailable, whose message the page shows."""
    try:
        yield
    except HostProblem as exc:
        raise HistoryUnavailable(exc.message) from None
