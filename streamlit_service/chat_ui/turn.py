"""One exchange with the model: the question, the answer streamed with a Stop button, and what is kept of it.

Proxy-only mode: the page records the question, sends the whole conversation, and records the answer.
Agent-host mode: only the new question goes out, with the session; the host stores it together with the answer
(or, on regenerate, answers its stored history again), and the page then re-reads the conversation from the host.
"""

from datetime import datetime
from typing import Any

import openai
import streamlit as st

from chat_ui import agent_turn, agent_view, chat_view, knowledge, session
from chat_ui.backend import Reply, chat_client, chat_messages, fallback_title, generate_title, stream_reply
from chat_ui.config import Settings
from chat_ui.errors import ChatProblem, explain
from chat_ui.history import History, HistoryUnavailable
from chat_ui.schemas import MESSAGE_MAX, Conversation, Facts, GenerationParams, Message, Role

CURSOR = " ▌"
NOT_STORED = ChatProblem(
    kind="stopped",
    message="Stopped before the answer began: the question was not kept.",
    action="Resend it, or write a new message.",
)


def check_limits(settings: Settings, params: GenerationParams, text: str | None) -> str | None:
    if params.max_tokens > settings.max_tokens_limit:
        return f"max tokens is {params.max_tokens}; this UI allows at most {settings.max_tokens_limit}"
    if text is not None and len(text) > MESSAGE_MAX:
        return f"the message has {len(text)} characters; at most {MESSAGE_MAX} are sent"
    if text is not None and not text.strip():
        return "the message is empty"
    return None


def _shown(role: Role, content: str, facts: Facts | None = None) -> Message:
    """A message on the page that its history does not hold (yet)."""
    return Message(id=-1, role=role, content=content, created_at=datetime.now().astimezone(), facts=facts)


def _conversation(history: History, params: GenerationParams) -> Conversation | None:
    """The open conversation, created on its first message; None while the history is down."""
    state = st.session_state
    # Proxy-only mode goes on without its database (the page keeps the chat); the host is asked every time.
    if state.conversation is None and (history.keeps_turns or not state.unsaved):
        try:
            conversation = history.create("New chat", params, list(state.get("draft_collections", [])))
        except HistoryUnavailable as exc:
            state.unsaved = True
            state.history_problem = str(exc)
            return None
        state.conversation = conversation
        session.select(conversation.id)
    result: Conversation | None = state.conversation
    return result


def _record(history: History, conversation: Conversation | None, role: Role, text: str, facts: Facts | None) -> None:
    """Proxy-only mode keeps the message; the page shows it either way."""
    kept = None
    if conversation is not None:
        try:
            kept = history.record(conversation.id, role, text, facts)
        except HistoryUnavailable:
            st.session_state.unsaved = True
    session.messages().append(kept or _shown(role, text, facts))


def run(settings: Settings, history: History, text: str | None) -> None:
    """Sends `text` (or, with None, answers the conversation's last question again) and streams the answer."""
    params = session.params()
    refused = check_limits(settings, params, text)
    if refused:
        st.error(f"Not sent: {refused}.")
        return
    session.set_problem(None)
    messages = session.messages()
    if text is None and (not messages or messages[-1].role != "user"):
        return
    question = text if text is not None else messages[-1].content
    first_exchange = len([m for m in messages if m.role == "user"]) <= (0 if text is not None else 1)
    conversation = _conversation(history, params)
    if history.keeps_turns and conversation is None:
        why = st.session_state.get("history_problem", "")
        session.set_problem(
            ChatProblem(kind="history", message=f"No chat could be opened: {why}", action="Resend."), question
        )
        st.rerun()
    if text is not None:
        if not history.keeps_turns:
            _record(history, conversation, "user", text, None)
        with st.chat_message("user"):
            st.markdown(text)
    client = chat_client(settings, session.credentials(settings))
    if agent_view.active(settings):
        answer, failed = _agent(settings, history, conversation, params, text)
    else:
        reply = Reply(params)
        try:
            _chat(settings, client, history, conversation, reply, text)
        finally:
            _finish(settings, history, conversation, reply, question, text is not None)
        answer, failed = reply.text, reply.error is not None
    if not failed and first_exchange and conversation is not None:
        _name(settings, history, client, conversation, params.model, question, answer)
    st.rerun()


def _chat(
    settings: Settings,
    client: openai.OpenAI,
    history: History,
    conversation: Conversation | None,
    reply: Reply,
    text: str | None,
) -> None:
    if history.keeps_turns and conversation is not None:
        # The host holds the history, the system prompt and the documents: only the new question goes out.
        body: dict[str, Any] = {"session_id": conversation.id}
        if text is None:
            body["regenerate"] = True
        messages = chat_messages(reply.params, [("user", text)] if text is not None else [], system=False)
    else:
        body = {}
        messages = chat_messages(reply.params, [(m.role, m.content) for m in session.messages()])
    with st.chat_message("assistant"):
        shown = st.empty()
        stop = st.empty()
        stop.button("Stop", icon=":material/stop_circle:", key="stop", help="Stops the answer; the model stops too")
        shown.markdown("_waiting for the model…_")
        pieces = stream_reply(client, messages, reply, extra_body=body)
        try:
            for piece in pieces:
                if piece is not None:
                    shown.markdown(reply.text + CURSOR)
                elif reply.first_token_at is None:
                    shown.markdown("_waiting for the model…_")  # also where a Stop click is noticed
        finally:
            pieces.close()  # on Stop (a rerun raised above) this closes the connection: the server stops too
        stop.empty()


def _finish(
    settings: Settings,
    history: History,
    conversation: Conversation | None,
    reply: Reply,
    question: str,
    asked: bool,
) -> None:
    """Keeps what the turn produced; a failure goes to the page with the question, to resend."""
    if reply.error is not None:
        problem = knowledge.explain_rag(reply.error) or explain(
            reply.error, reply.params.model, client_url(settings), _secret(settings), bool(settings.agent_host_url)
        )
        session.set_problem(problem, question)
        return
    if history.keeps_turns:
        if asked and reply.stopped and not reply.text:
            session.set_problem(NOT_STORED, question)  # the host stores a question only with its answer
        elif conversation is not None:
            st.session_state.just_streamed = chat_view.JustStreamed(conversation.id, reply.facts())
        return
    if reply.text or not reply.stopped:
        _record(history, conversation, "assistant", reply.text, reply.facts())


def _secret(settings: Settings) -> str:
    """The credential chat requests carry, kept out of any message shown."""
    return session.credentials(settings).api_key


def client_url(settings: Settings) -> str:
    return settings.agent_host_url.rstrip("/") + "/v1" if settings.agent_host_url else settings.litellm_base_url


def _agent(
    settings: Settings,
    history: History,
    conversation: Conversation | None,
    params: GenerationParams,
    text: str | None,
) -> tuple[str, bool]:
    """An agent run on the conversation; with its session the host adds the question and the answer to it."""
    messages = session.messages()
    pairs = [(m.role, m.content) for m in messages] + ([("user", text)] if text is not None else [])
    question = pairs[-1][1]
    if text is None and conversation is not None and messages and messages[-1].id > 0:
        try:  # the run stores its question again with the answer: one copy, in order
            history.delete_message(conversation.id, messages[-1].id)
        except HistoryUnavailable as exc:
            session.set_problem(ChatProblem(kind="history", message=str(exc), action="Resend."), question)
            return "", True
    body = {
        "messages": chat_messages(params, pairs),
        "agent": agent_view.chosen_agent(),
        "model": params.model,
        "session_id": conversation.id if conversation is not None else None,
        "remember": True,
        "collections": (conversation.collections if conversation is not None else None) or None,
        "stream": True,
    }
    reply = agent_turn.AgentReply(agent=agent_view.chosen_agent())
    try:
        agent_turn.stream(session.host(settings), body, reply)
    finally:
        if reply.error is not None:
            session.set_problem(agent_turn.problem(reply.error), question)
        elif reply.stopped:
            session.set_problem(NOT_STORED, question)  # the host keeps a run only when it answers
        elif conversation is not None:
            st.session_state.just_streamed = chat_view.JustStreamed(conversation.id, reply.facts(params), reply.events)
    return reply.text, reply.error is not None or reply.stopped


def _name(
    settings: Settings,
    history: History,
    client: openai.OpenAI,
    conversation: Conversation,
    model: str,
    question: str,
    answer: str,
) -> None:
    title = generate_title(client, model, question, answer) if settings.title_from_model else fallback_title(question)
    try:
        history.rename(conversation.id, title)
        conversation.title = title
    except HistoryUnavailable:
        pass
