"""One exchange in agent mode: POST /agents/run with the conversation, each step drawn live as an expander.

With the chat's session the host adds the question and the answer to the session's history itself.
"""

import time
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from chat_ui import agent_view
from chat_ui.errors import ChatProblem
from chat_ui.host import HostClient, HostProblem
from chat_ui.schemas import Facts, GenerationParams
from chat_ui.streaming import relay

CURSOR = " ▌"
ACTIONS = {
    401: "Sign in again, then resend.",
    404: "Pick another agent in the sidebar (or auto), then resend.",
    422: "The agent host refused the request: shorten the conversation or start a new chat, then resend.",
    503: "A service behind the agent host is down: check `make status`, then resend.",
}


@dataclass
class AgentReply:
    """A streamed agent run: its events (text deltas left out once folded into `draft`), the answer and timings."""

    agent: str | None = None  # None: the host's router picks
    started: float = field(default_factory=time.perf_counter)
    events: list[dict[str, Any]] = field(default_factory=list)
    draft: str = ""  # what the model is writing in the current step
    answer: str | None = None
    model: str = ""
    first_text_at: float | None = None
    ended: float | None = None
    stopped: bool = False
    error: Exception | None = None

    def absorb(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "delta":
            if self.first_text_at is None:
                self.first_text_at = time.perf_counter()
            self.draft += str(event.get("text", ""))
            return  # the step's thought or the answer repeats the text in full
        if kind in ("thought", "tool_call"):
            self.draft = ""
        if kind == "start":
            self.agent = str(event.get("agent", self.agent))
            self.model = str(event.get("model", ""))
        elif kind == "answer":
            self.answer = str(event.get("content", ""))
        elif kind == "error":
            error = event.get("error") or {}
            self.error = HostProblem(str(error.get("message", "the agent run failed")), kind=str(error.get("type", "")))
        self.events.append(event)

    @property
    def text(self) -> str:
        return self.answer if self.answer is not None else self.draft

    def facts(self, params: GenerationParams) -> Facts:
        end = self.ended or self.started
        ttft = None if self.first_text_at is None else (self.first_text_at - self.started) * 1000
        return Facts(
            model=self.model or params.model, ttft_ms=ttft, total_ms=(end - self.started) * 1000, stopped=self.stopped
        )


def stream(client: HostClient, body: dict[str, Any], reply: AgentReply) -> None:
    """Runs the agent into `reply` and shows its steps as they come; Stop closes the run (the host ends it)."""
    with st.chat_message("assistant"):
        steps = st.empty()
        shown = st.empty()
        stop = st.empty()
        stop.button("Stop", icon=":material/stop_circle:", key="stop", help="Stops the agent run here")
        shown.markdown(f"_{reply.agent or 'the chosen'} agent is starting…_")
        events = relay(lambda feed: client.run_agent(body, feed), name="agent-stream")
        finished = False
        try:
            for item in events:
                if item is None:
                    continue  # where a Stop click is noticed
                if isinstance(item, Exception):
                    reply.error = item
                    continue
                assert isinstance(item, dict)
                reply.absorb(item)
                if item.get("type") == "delta":
                    shown.markdown(reply.draft + CURSOR)
                    continue
                with steps.container():
                    agent_view.render_events(reply.events, live=True)
                shown.markdown(reply.text + ("" if reply.answer is not None else CURSOR))
            finished = True
        finally:
            reply.ended = time.perf_counter()
            if not finished:
                events.close()  # on Stop (a rerun raised above) this closes the connection: the host ends the run
                reply.stopped = reply.error is None
        stop.empty()


def problem(error: Exception) -> ChatProblem:
    if isinstance(error, HostProblem):
        action = ACTIONS.get(error.status or 0, "Resend; if it keeps failing, see the agent host's log (`make logs`).")
        return ChatProblem(kind=error.kind or "agent", message=f"The agent run failed: {error.message}", action=action)
    text = f"{type(error).__name__}: {error}"
    return ChatProblem(kind="unexpected", message=text, action="Resend, or check the UI log.")
