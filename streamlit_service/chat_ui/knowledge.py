"""The chat's documents: which collections a conversation answers from, sent as `rag` with every request.

The choice is the UI's (kept per conversation beside its history), not bound to the agent-host session, because
regenerate and resend go out without the session (see turn.py) and must retrieve the same way.
"""

from typing import Any

import openai
import streamlit as st

from chat_ui import session
from chat_ui.config import Settings
from chat_ui.errors import ChatProblem
from chat_ui.extras_store import ExtrasStore
from chat_ui.rag_client import HostProblem, rag_client_of
from chat_ui.store import StoreUnavailable

# Host error types that are about documents, not the model: errors.explain would blame the model for them.
RAG_ERRORS = {
    "collection_not_found": "Pick the chat's collections again: one of them was deleted.",
    "vector_store_unavailable": "The agent host's document store is down: see its log (`make logs`), or clear "
    "the chat's collections to chat without documents.",
    "embedding_model_unknown": "The collection's embedding model is not available on the agent host.",
}


@st.cache_resource(show_spinner=False)
def _extras_store(url: str) -> ExtrasStore:
    return ExtrasStore(session.get_store(url), url)


def extras_store_of(settings: Settings) -> ExtrasStore:
    return _extras_store(settings.database_url.get_secret_value())


def selected(settings: Settings) -> list[str]:
    """The open chat's collections (a new chat's come from the draft)."""
    if not settings.agent_host_url:
        return []
    state = st.session_state
    conversation = state.conversation
    if conversation is None:
        return list(state.get("draft_collections", []))
    cached = state.get("chat_collections")
    if cached is None or cached[0] != conversation.id:
        try:
            names = extras_store_of(settings).collections(conversation.id)
        except StoreUnavailable:
            names = list(cached[1]) if cached else []
        state.chat_collections = (conversation.id, names)
    return list(state.chat_collections[1])


def remember(settings: Settings, conversation_id: int, names: list[str]) -> None:
    """Keeps the choice for the conversation; for this page only while the database is down."""
    st.session_state.chat_collections = (conversation_id, list(names))
    try:
        extras_store_of(settings).set_collections(conversation_id, names)
    except StoreUnavailable:
        st.toast("Collections kept for this session only: the history database is down.")


def _chosen(settings: Settings, key: str) -> None:
    names = list(st.session_state.get(key) or [])
    conversation = st.session_state.conversation
    if conversation is None:
        st.session_state.draft_collections = names
    else:
        remember(settings, conversation.id, names)


def picker(settings: Settings) -> None:
    """A multiselect of the host's collections for this conversation; nothing in proxy mode."""
    if not settings.agent_host_url:
        return
    try:
        available = [c.name for c in rag_client_of(settings).collections(timeout=settings.probe_timeout * 2)]
    except HostProblem as exc:
        st.caption(f"Document collections unavailable: {exc.message}")
        return
    if not available:
        st.caption("No document collections yet: add documents on the Documents page to chat with them.")
        return
    current = selected(settings)
    gone = [name for name in current if name not in available]
    key = f"collections-{st.session_state.conv_id}"
    st.multiselect(
        "Answer from documents in",
        available,
        default=[name for name in current if name in available],
        key=key,
        on_change=_chosen,
        args=(settings, key),
        placeholder="no collection: plain chat",
        help="Each question retrieves the best chunks from these collections; answers cite them as [1], [2]",
    )
    if gone:
        st.caption(f"No longer on the agent host: {', '.join(gone)}.")


def rag_body(settings: Settings) -> dict[str, Any] | None:
    """The request's `rag` field for the open chat, or None for a plain chat."""
    names = selected(settings)
    return {"collections": names} if names else None


def explain_rag(exc: Exception) -> ChatProblem | None:
    """A document-side failure of a chat request said as such; None for anything else."""
    if not isinstance(exc, openai.APIStatusError) or not isinstance(exc.body, dict):
        return None
    error = exc.body.get("error", exc.body)
    kind = str(error.get("type", "")) if isinstance(error, dict) else ""
    if kind not in RAG_ERRORS:
        return None
    message = str(error.get("message", kind)) if isinstance(error, dict) else kind
    return ChatProblem(kind=kind, message=f"{message} ({exc.status_code}).", action=RAG_ERRORS[kind])
