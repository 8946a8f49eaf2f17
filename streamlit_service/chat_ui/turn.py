"""One exchange with the model: save the question, stream the answer with a Stop button, save it."""

from datetime import datetime
from typing import Any

import openai
import streamlit as st

from chat_ui import agent_turn, agent_view, knowledge, session, sources
from chat_ui.agent_client import AgentReply
from chat_ui.backend import Reply, ensure_host_session, fallback_title, generate_title, stream_reply
from chat_ui.config import Settings
from chat_ui.errors import explain
from chat_ui.extras_store import AnswerExtras
from chat_ui.schemas import MESSAGE_MAX, Facts, GenerationParams, Message, Role
from chat_ui.store import HistoryStore, StoreUnavailable

CURSOR = " ▌"


def _local_message(role: Role, content: str, facts: Facts | None = None) -> Message:
    return Message(id=-1, role=role, content=content, created_at=datetime.now().astimezone(), facts=facts)


def _save(store: HistoryStore, role: Role, content: str, facts: Facts | None = None) -> Message:
    """Saves to the open conversation, creating it on the first message; keeps it in the page if the DB is down."""
    state = st.session_state
    try:
        if state.conversation is None and not state.unsaved:
            conversation = store.create("New chat", session.params())
            state.conversation = conversation
            session.select(conversation.id)
        if state.conversation is not None:
            return store.add_message(state.conversation.id, role, content, facts)
    except StoreUnavailable:
        state.unsaved = True
    return _local_message(role, content, facts)


@st.cache_resource(show_spinner=False)
def _client(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    """One client per backend: its connection pool saves a TCP setup on every message."""
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)


def check_limits(settings: Settings, params: GenerationParams, text: str | None) -> str | None:
    if params.max_tokens > settings.max_tokens_limit:
        return f"max tokens is {params.max_tokens}; this UI allows at most {settings.max_tokens_limit}"
    if text is not None and len(text) > MESSAGE_MAX:
        return f"the message has {len(text)} characters; at most {MESSAGE_MAX} are sent"
    if text is not None and not text.strip():
        return "the message is empty"
    return None


def run(settings: Settings, store: HistoryStore, text: str | None) -> None:
    """Sends `text` (or, with None, answers the history's last question again) and streams the answer."""
    params = session.params()
    refused = check_limits(settings, params, text)
    if refused:
        st.error(f"Not sent: {refused}.")
        return
    session.set_problem(None)
    rag = knowledge.rag_body(settings)  # read before the first message turns the draft into a conversation
    history = session.messages()
    if text is not None:
        history.append(_save(store, "user", text))
        with st.chat_message("user"):
            st.markdown(text)
    if not history or history[-1].role != "user":
        return
    question = history[-1].content
    first_exchange = len(history) == 1
    client = _client(settings.chat_base_url, settings.chat_api_key, settings.request_timeout)
    conversation = st.session_state.conversation
    if rag and first_exchange and conversation is not None:
        knowledge.remember(settings, conversation.id, rag["collections"])
    pairs: list[tuple[str, str]] = [(m.role, m.content) for m in history]
    if agent_view.active(settings):
        # The session is sent on a resend too (for its notes), but only a new question joins its history.
        session_id = ensure_host_session(settings, conversation.id, conversation.title) if conversation else None
        agent_reply = agent_turn.stream(
            settings,
            params,
            pairs,
            session_id,
            lambda done: _finish_agent(settings, store, done, question, params),
            collections=rag["collections"] if rag else None,
            remember=text is not None,
        )
        answer, failed = agent_reply.text, agent_reply.error is not None
    else:
        session_id = None
        if settings.agent_host_url and conversation is not None and text is not None:
            session_id = ensure_host_session(settings, conversation.id, conversation.title)
        reply = Reply(params)
        _stream_chat(settings, store, client, pairs, reply, session_id, rag, question)
        answer, failed = reply.text, reply.error is not None
    if not failed and first_exchange and st.session_state.conversation is not None:
        _name(settings, store, client, params.model, question, answer)
    st.rerun()


def _stream_chat(
    settings: Settings,
    store: HistoryStore,
    client: openai.OpenAI,
    pairs: list[tuple[str, str]],
    reply: Reply,
    session_id: str | None,
    rag: dict[str, Any] | None,
    question: str,
) -> None:
    with st.chat_message("assistant"):
        shown = st.empty()
        stop = st.empty()
        stop.button(
            "Stop",
            icon=":material/stop_circle:",
            key="stop",
            help="Stops the answer here; the model stops generating too",
        )
        shown.markdown("_waiting for the model…_")
        extra = {"rag": rag} if rag else None
        pieces = stream_reply(client, reply.params, pairs, reply, session_id=session_id, extra_body=extra)
        try:
            for piece in pieces:
                if piece is not None:
                    shown.markdown(reply.text + CURSOR)
                elif reply.first_token_at is None:
                    shown.markdown("_waiting for the model…_")  # also where a Stop click is noticed
        finally:
            pieces.close()  # on Stop (a rerun raised above) this closes the connection: the server stops too
            _finish(settings, store, reply, question, rag["collections"] if rag else [])
        stop.empty()


def _finish_agent(
    settings: Settings, store: HistoryStore, reply: AgentReply, question: str, params: GenerationParams
) -> None:
    if reply.error is not None:
        session.set_problem(agent_turn.problem(reply.error), question)
        return
    if reply.text or not reply.stopped:
        message = _save(store, "assistant", reply.text, agent_turn.facts(reply, params))
        session.messages().append(message)
        sources.keep(settings, message, AnswerExtras(agent=reply.agent, steps=reply.events))


def _finish(settings: Settings, store: HistoryStore, reply: Reply, question: str, searched: list[str]) -> None:
    if reply.error is not None:
        problem = knowledge.explain_rag(reply.error) or explain(
            reply.error, reply.params.model, settings.chat_base_url, settings.chat_api_key
        )
        session.set_problem(problem, question)
        return
    if reply.text or not reply.stopped:
        message = _save(store, "assistant", reply.text, reply.facts())
        session.messages().append(message)
        sources.keep(settings, message, AnswerExtras(collections=searched, citations=reply.citations or []))


def _name(
    settings: Settings, store: HistoryStore, client: openai.OpenAI, model: str, question: str, answer: str
) -> None:
    conversation = st.session_state.conversation
    title = generate_title(client, model, question, answer) if settings.title_from_model else fallback_title(question)
    try:
        store.rename(conversation.id, title)
        conversation.title = title
    except StoreUnavailable:
        pass
