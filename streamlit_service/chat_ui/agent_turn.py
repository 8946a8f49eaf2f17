"""One exchange in agent mode: POST /agents/run with the conversation, each step drawn live as an expander."""

from collections.abc import Callable

import streamlit as st

from chat_ui import agent_view
from chat_ui.agent_client import AgentReply, stream_agent_run
from chat_ui.backend import chat_messages
from chat_ui.config import Settings
from chat_ui.errors import ChatProblem
from chat_ui.rag_client import HostProblem
from chat_ui.schemas import Facts, GenerationParams

CURSOR = " ▌"
ACTIONS = {
    404: "Pick another agent in the sidebar (or auto), then resend.",
    422: "The agent host refused the request: shorten the conversation or start a new chat, then resend.",
    503: "A service behind the agent host is down: check `make status`, then resend.",
}


def stream(
    settings: Settings,
    params: GenerationParams,
    history: list[tuple[str, str]],
    session_id: str | None,
    finish: Callable[[AgentReply], None],
    collections: list[str] | None = None,
    remember: bool = True,
) -> AgentReply:
    """Runs the agent on the conversation and shows its steps as they come; `finish` keeps the outcome, Stop too."""
    agent = agent_view.chosen_agent()
    body = {
        "messages": chat_messages(params, history),
        "agent": agent,
        "model": params.model,
        "session_id": session_id,  # the session's notes, and its history on a new question
        "remember": remember,  # a resend must not add the question to the host's history twice
        "collections": collections,  # document search stays within the chat's collections
        "stream": True,
    }
    reply = AgentReply(agent=agent)
    with st.chat_message("assistant"):
        steps = st.empty()
        shown = st.empty()
        stop = st.empty()
        stop.button("Stop", icon=":material/stop_circle:", key="stop", help="Stops the agent run here")
        shown.markdown(f"_{agent or 'the chosen'} agent is starting…_")
        events = stream_agent_run(settings, body, reply)
        try:
            for event in events:
                if event is None:
                    continue  # where a Stop click is noticed
                if event.get("type") == "delta":
                    shown.markdown(reply.draft + CURSOR)
                    continue
                with steps.container():
                    agent_view.render_events(reply.events, live=True)
                shown.markdown(reply.text + ("" if reply.answer is not None else CURSOR))
        finally:
            events.close()  # on Stop (a rerun raised above) this closes the connection: the host ends the run
            finish(reply)
        stop.empty()
    return reply


def facts(reply: AgentReply, params: GenerationParams) -> Facts:
    end = reply.ended or reply.started
    ttft = None if reply.first_text_at is None else (reply.first_text_at - reply.started) * 1000
    return Facts(model=reply.model or params.model, ttft_ms=ttft, total_ms=(end - reply.started) * 1000,
                 stopped=reply.stopped)  # fmt: skip


def problem(error: Exception) -> ChatProblem:
    if isinstance(error, HostProblem):
        action = ACTIONS.get(error.status or 0, "Resend; if it keeps failing, see the agent host's log (`make logs`).")
        return ChatProblem(kind=error.kind or "agent", message=f"The agent run failed: {error.message}", action=action)
    text = f"{type(error).__name__}: {error}"
    return ChatProblem(kind="unexpected", message=text, action="Resend, or check the UI log.")
