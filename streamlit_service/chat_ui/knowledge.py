"""The chat's documents: which collections a conversation answers from (agent-host mode only).

The choice is part of the host's session (its `collections`): every turn of it retrieves from them, regenerate and
edit included, and nothing of it is kept in the UI. A new chat's choice waits in the draft until the chat exists.
"""

import openai
import streamlit as st

from chat_ui import session
from chat_ui.config import Settings
from chat_ui.errors import ChatProblem
from chat_ui.history import History, HistoryUnavailable
from chat_ui.host import HostProblem

# Host error types that are about documents, not the model: errors.explain would blame the model for them.
RAG_ERRORS = {
    "collection_not_found": "Pick the chat's collections again: one of them was deleted.",
    "vector_store_unavailable": "The agent host's document store is down: see its log (`make logs`), or clear "
    "the chat's collections to chat without documents.",
    "embedding_model_unknown": "The collection's embedding model is not available on the agent host.",
}


def selected() -> list[str]:
    """The open chat's collections (a new chat's come from the draft)."""
    conversation = st.session_state.conversation
    if conversation is None:
        return list(st.session_state.get("draft_collections", []))
    return list(conversation.collections)


def _chosen(history: History, key: str) -> None:
    names = list(st.session_state.get(key) or [])
    conversation = st.session_state.conversation
    if conversation is None:
        st.session_state.draft_collections = names
        return
    try:
        history.set_collections(conversation.id, names)
    except HistoryUnavailable as exc:
        st.toast(f"Collections not changed: {exc}")
        return
    conversation.collections = names


def picker(settings: Settings, history: History) -> None:
    """A multiselect of the person's collections (and the shared ones) for this conversation; nothing in proxy mode."""
    if not settings.agent_host_url:
        return
    try:
        available = [c.name for c in session.host(settings).collections(timeout=settings.probe_timeout * 2)]
    except HostProblem as exc:
        st.caption(f"Document collections unavailable: {exc.message}")
        return
    if not available:
        st.caption("No document collections yet: add documents on the Documents page to chat with them.")
        return
    current = selected()
    gone = [name for name in current if name not in available]
    key = f"collections-{st.session_state.conv_id}"
    st.multiselect(
        "Answer from documents in",
        available,
        default=[name for name in current if name in available],
        key=key,
        on_change=_chosen,
        args=(history, key),
        placeholder="no collection: plain chat",
        help="Each question retrieves the best chunks from these collections; answers cite them as [1], [2]",
    )
    if gone:
        st.caption(f"No longer on the agent host: {', '.join(gone)}.")


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
