"""Under an answer: the sources it cites, as expanders "[1] file.pdf · page 3" with the chunk and its score."""

import streamlit as st

from chat_ui import knowledge
from chat_ui.config import Settings
from chat_ui.extras_store import AnswerExtras
from chat_ui.rag_models import Citation
from chat_ui.schemas import Message
from chat_ui.store import StoreUnavailable


def render(citations: list[Citation], searched: list[str]) -> None:
    """The cited chunks, one expander each; a line saying so when the collections had nothing relevant."""
    if not citations:
        if searched:
            st.caption(f"Searched {', '.join(searched)}: nothing relevant, so no sources.")
        return
    st.caption("Sources")
    for citation in citations:
        with st.expander(citation.label(), icon=":material/description:"):
            where = [f"score {citation.score:.3f}"]
            if citation.collection:
                where.append(f"collection {citation.collection}")
            if citation.section:
                where.append(f"section {citation.section}")
            st.caption(" · ".join(where))
            st.text(citation.text)


def conversation_extras(settings: Settings) -> dict[int, AnswerExtras]:
    """The open conversation's answer extras by message id (empty in proxy mode or while the database is down)."""
    conversation = st.session_state.conversation
    if not settings.agent_host_url or conversation is None:
        return {}
    try:
        return knowledge.extras_store_of(settings).for_conversation(conversation.id)
    except StoreUnavailable:
        return {}


def extras_of(message: Message, saved: dict[int, AnswerExtras]) -> AnswerExtras | None:
    """A message's extras: from the database, or kept in the page when the message could not be saved."""
    if message.id in saved:
        return saved[message.id]
    local: dict[int, AnswerExtras] = st.session_state.get("local_extras", {})
    return local.get(id(message))


def keep(settings: Settings, message: Message, extras: AnswerExtras) -> None:
    """Stores an answer's extras with it; in the page only when the answer itself is not in the database."""
    if extras.empty:
        return
    if message.id > 0:
        try:
            knowledge.extras_store_of(settings).save(message.id, extras)
            return
        except StoreUnavailable:
            pass
    st.session_state.setdefault("local_extras", {})[id(message)] = extras
