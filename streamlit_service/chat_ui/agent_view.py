"""Agent mode: the sidebar switch and agent picker, and an agent run's steps as expanders (live and in history)."""

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from chat_ui import session
from chat_ui.config import Settings
from chat_ui.host import HostProblem
from chat_ui.host_models import AgentInfo

AUTO = "auto"
# Said without the word "proxy": the status panel below owns that word (and the browser tests look for it there).
AGENT_HOST_ONLY = "Documents (RAG) and agents need the agent host: AGENT_HOST_URL is not set, so they are off."
ROUTES = {
    "explicit": "as chosen",
    "embedding": "picked by the router: closest to the request",
    "keywords": "picked by the router: keywords",
    "default": "the default agent",
}
STOP_WORDS = {
    "max_steps": "the step limit",
    "max_tool_calls": "the tool-call limit",
    "loop": "a loop (the same call again)",
    "total_time": "the time limit",
}


@dataclass
class StepBlock:
    """One model step: what it thought, the tools it called and what they returned."""

    step: int
    plan_step: int | None
    events: list[dict[str, Any]] = field(default_factory=list)

    def label(self) -> str:
        where = f"Step {self.step}" if self.plan_step is None else f"Plan step {self.plan_step} · step {self.step}"
        tools = [str(e.get("name")) for e in self.events if e.get("type") == "tool_call"]
        failed = any(e.get("type") == "tool_result" and e.get("is_error") for e in self.events)
        limit = any(e.get("type") == "limit" for e in self.events)
        what = ", ".join(dict.fromkeys(tools)) if tools else "thought"
        return f"{where}: {what}" + (" (error)" if failed else "") + (" (limit reached)" if limit else "")


def blocks_of(events: list[dict[str, Any]]) -> list[StepBlock | dict[str, Any]]:
    """The run in reading order: step events grouped by (plan step, step), the others on their own."""
    blocks: list[StepBlock | dict[str, Any]] = []
    steps: dict[tuple[int | None, int], StepBlock] = {}
    for event in events:
        if event.get("type") in ("thought", "tool_call", "tool_result", "limit"):
            key = (event.get("plan_step"), int(event.get("step", 0)))
            if key not in steps:
                steps[key] = StepBlock(key[1], key[0])
                blocks.append(steps[key])
            steps[key].events.append(event)
        elif event.get("type") not in ("delta", "answer"):
            blocks.append(event)
    return blocks


def active(settings: Settings) -> bool:
    return bool(settings.agent_host_url) and bool(st.session_state.get("agent_mode"))


def chosen_agent() -> str | None:
    """The agent named in the sidebar; None lets the host's router pick."""
    name = st.session_state.get("agent_name", AUTO)
    return None if name in (None, AUTO) else str(name)


def sidebar_controls(settings: Settings) -> None:
    if not settings.agent_host_url:
        st.caption(AGENT_HOST_ONLY)
        return
    st.toggle(
        "Agent mode",
        key="agent_mode",
        on_change=_forget_agents,
        help="Answers come from an agent that may call tools (calculator, clock, your documents, MCP servers); "
        "each step is shown as it happens",
    )
    if not st.session_state.get("agent_mode"):
        return
    agents = _agents(settings)
    if agents is None:
        return
    names = [AUTO] + [agent.name for agent in agents]
    described = {agent.name: agent for agent in agents}
    if st.session_state.get("agent_name") not in names:
        st.session_state.agent_name = AUTO
    st.selectbox(
        "Agent",
        names,
        key="agent_name",
        format_func=lambda name: "auto: the host picks" if name == AUTO else _agent_label(described[name]),
    )


def _forget_agents() -> None:
    st.session_state.agents_list = None  # read the host's agents again when agent mode is switched on


def _agent_label(agent: AgentInfo) -> str:
    return f"{agent.name} ({agent.kind})" if agent.kind != "tools" else agent.name


def _agents(settings: Settings) -> list[AgentInfo] | None:
    cached = st.session_state.get("agents_list")
    if cached is None:
        try:
            cached = session.host(settings).agents(timeout=settings.probe_timeout * 2)
        except HostProblem as exc:
            st.caption(f"Agents unavailable: {exc.message}")
            return None
        st.session_state.agents_list = cached
    result: list[AgentInfo] = cached
    return result


def render_events(events: list[dict[str, Any]], live: bool = False) -> None:
    """The run's header, plan and steps; the last step stays open while the run is live."""
    blocks = blocks_of(events)
    last_step = max((i for i, block in enumerate(blocks) if isinstance(block, StepBlock)), default=-1)
    for index, block in enumerate(blocks):
        if isinstance(block, StepBlock):
            with st.expander(block.label(), expanded=live and index == last_step, icon=":material/build:"):
                render_step(block)
        else:
            render_other(block)


def render_step(block: StepBlock) -> None:
    for event in block.events:
        kind = event.get("type")
        if kind == "thought":
            st.markdown(f"_{event.get('text', '')}_")
        elif kind == "tool_call":
            st.markdown(f"**Tool call** `{event.get('name')}`")
            arguments = event.get("arguments")
            if isinstance(arguments, dict):
                st.json(arguments)
            else:
                st.code(str(arguments), language=None, wrap_lines=True)
        elif kind == "tool_result":
            took = f" · {float(event.get('latency_ms', 0)):.0f} ms"
            cut = " · cut to size" if event.get("truncated") else ""
            if event.get("is_error"):
                st.error(f"`{event.get('name')}` failed{took}: {event.get('content', '')}", icon=":material/error:")
            else:
                st.markdown(f"**Result** of `{event.get('name')}`{took}{cut}")
                st.code(str(event.get("content", "")), language=None, wrap_lines=True)
        elif kind == "limit":
            st.warning(str(event.get("message", "a limit was reached")), icon=":material/block:")


def render_other(event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "start":
        route = event.get("route") or {}
        tools = ", ".join(event.get("tools") or []) or "none"
        how = ROUTES.get(str(route.get("method")), str(route.get("method", "")))
        st.caption(f"Agent **{event.get('agent')}** ({how}) · model {event.get('model')} · tools: {tools}")
    elif kind == "plan":
        items = event.get("steps") or []
        with st.expander(f"Plan: {len(items)} steps", icon=":material/checklist:"):
            if event.get("fallback"):
                st.caption(f"The model's plan was unusable ({event['fallback']}); the task ran as one step.")
            for item in items:
                st.markdown(f"{item.get('index')}. **{item.get('agent')}**: {item.get('task')}")
    elif kind == "plan_step":
        if event.get("status") == "started":
            st.markdown(f"**Plan step {event.get('index')}** · {event.get('agent')}: {event.get('task')}")
        elif event.get("answer"):
            with st.expander(f"Plan step {event.get('index')} result", icon=":material/task_alt:"):
                st.markdown(str(event.get("answer")))
    elif kind == "error":
        error = event.get("error") or {}
        st.error(f"The run failed: {error.get('message', error)}", icon=":material/error:")


def run_summary(events: list[dict[str, Any]]) -> str:
    """One line under an agent's answer: steps, tool calls and why it stopped, when it was stopped."""
    answer = next((e for e in events if e.get("type") == "answer"), None)
    if answer is None:
        return ""
    steps, calls = int(answer.get("steps", 0)), int(answer.get("tool_calls", 0))
    line = f"{steps} step{'' if steps == 1 else 's'} · {calls} tool call{'' if calls == 1 else 's'}"
    if answer.get("stopped_by"):
        line += f" · stopped by {STOP_WORDS.get(str(answer['stopped_by']), answer['stopped_by'])}"
    return line
