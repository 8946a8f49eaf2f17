"""One tool-calling agent run as a LangGraph graph: model → tools → model …, every step reported as an event."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.tools import BaseTool
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from agent_host.agents.events import DeltaEvent, LimitEvent, ThoughtEvent, ToolCallEvent, ToolResultEvent
from agent_host.agents.execution import run_tool
from agent_host.agents.limits import RunBudget, Stop, max_steps_stop, tool_budget_stop
from agent_host.agents.registry import AgentSpec, ToolExample


@dataclass
class AgentRun:
    """Everything one agent run needs; `budget` may be shared with the planner steps around it."""

    agent: AgentSpec
    model: BaseChatModel
    tools: list[BaseTool]
    messages: list[BaseMessage]
    max_steps: int
    budget: RunBudget
    plan_step: int | None = None


@dataclass
class Outcome:
    answer: str = ""
    stop: Stop | None = None
    steps: int = 0
    tool_results: list[str] = field(default_factory=list)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    steps: int
    stop: Stop | None


def example_messages(examples: list[ToolExample]) -> list[BaseMessage]:
    """Each example as the exchange it shows: request, tool call, tool result, answer."""
    messages: list[BaseMessage] = []
    for number, example in enumerate(examples, start=1):
        call_id = f"example_{number}"
        messages += [
            HumanMessage(example.request),
            AIMessage("", tool_calls=[{"id": call_id, "name": example.tool, "args": example.arguments}]),
            ToolMessage(example.result, tool_call_id=call_id),
            AIMessage(example.answer),
        ]
    return messages


def opening_messages(
    agent: AgentSpec, conversation: list[BaseMessage], tools: list[str], extra_system: str = ""
) -> list[BaseMessage]:
    """System prompt, the examples of the tools this run has (an MCP server may be down), the conversation."""
    system = "\n\n".join(part for part in (agent.system_prompt.strip(), extra_system.strip()) if part)
    head: list[BaseMessage] = [SystemMessage(system)] if system else []
    examples = [example for example in agent.examples if example.tool in tools]
    return head + example_messages(examples) + conversation


def _text(message: BaseMessage) -> str:
    return str(message.text)  # the text blocks of the content, joined


def strict_reply(merged: AIMessageChunk | None) -> AIMessage:
    """The streamed reply as one message. LangChain repairs cut-off JSON arguments while streaming
    (`{"text": "Fli` becomes `{"text": "Fli"}`); a call whose arguments do not parse is kept as invalid
    instead, so a truncated call is never run as if the model had meant it."""
    if merged is None:
        return AIMessage("")
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for number, piece in enumerate(merged.tool_call_chunks):
        raw = piece.get("args") or "{}"
        call_id = piece.get("id") or f"call_{number}"
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            arguments = None
        if isinstance(arguments, dict):
            calls.append(ToolCall(name=piece.get("name") or "", args=arguments, id=call_id))
        else:
            invalid.append(
                InvalidToolCall(
                    type="invalid_tool_call", name=piece.get("name"), args=raw, id=call_id, error="bad JSON"
                )
            )
    return AIMessage(content=merged.content, tool_calls=calls, invalid_tool_calls=invalid, id=merged.id)


def build_graph(run: AgentRun) -> Any:
    tools_by_name = {tool.name: tool for tool in run.tools}
    budget = run.budget
    limits = budget.limits

    async def call_model(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        step = state["steps"] + 1
        # The last step, or a spent tool budget, offers no tools: the model has to answer with what it has.
        offer = bool(run.tools) and step < run.max_steps and budget.tool_calls_left() > 0
        model = run.model.bind_tools(run.tools) if offer else run.model
        merged: AIMessageChunk | None = None
        async for chunk in model.astream(state["messages"]):
            if not isinstance(chunk, AIMessageChunk):
                continue
            piece = _text(chunk)
            if piece:
                write(DeltaEvent(step=step, plan_step=run.plan_step, text=piece))
            merged = chunk if merged is None else merged + chunk
        budget.model_calls += 1
        reply = strict_reply(merged)
        update: dict[str, Any] = {"messages": [reply], "steps": step}
        if isinstance(reply, AIMessage) and (reply.tool_calls or reply.invalid_tool_calls):
            if _text(reply).strip():
                write(ThoughtEvent(step=step, plan_step=run.plan_step, text=_text(reply)))
            if not offer:
                stop = max_steps_stop(run.max_steps) if step >= run.max_steps else tool_budget_stop(limits)
                write(LimitEvent(step=step, plan_step=run.plan_step, kind=stop.kind, message=stop.message))
                update["stop"] = stop
        return update

    async def call_tools(state: State) -> dict[str, Any]:
        write = get_stream_writer()
        step = state["steps"]
        reply = state["messages"][-1]
        assert isinstance(reply, AIMessage)
        calls: list[tuple[str, str, dict[str, Any] | str]] = [
            (call["id"] or f"call_{step}_{n}", call["name"], call["args"]) for n, call in enumerate(reply.tool_calls)
        ]
        calls += [
            (bad["id"] or f"bad_{step}_{n}", bad["name"] or "", bad["args"] or "")
            for n, bad in enumerate(reply.invalid_tool_calls)
        ]
        results: list[ToolMessage] = []
        for call_id, name, arguments in calls:
            write(ToolCallEvent(step=step, plan_step=run.plan_step, id=call_id, name=name, arguments=arguments))
            stop = budget.check_call(name, arguments)
            if stop is not None:
                write(LimitEvent(step=step, plan_step=run.plan_step, kind=stop.kind, message=stop.message))
                return {"messages": results, "stop": stop}
            outcome = await run_tool(tools_by_name, name, arguments, limits.tool_timeout, limits.result_max_chars)
            write(
                ToolResultEvent(
                    step=step,
                    plan_step=run.plan_step,
                    id=call_id,
                    name=name,
                    content=outcome.content,
                    is_error=outcome.is_error,
                    latency_ms=outcome.latency_ms,
                    truncated=outcome.truncated,
                )
            )
            status = "error" if outcome.is_error else "success"
            results.append(ToolMessage(outcome.content, tool_call_id=call_id, name=name, status=status))
        return {"messages": results}

    def after_model(state: State) -> str:
        reply = state["messages"][-1]
        wants_tools = isinstance(reply, AIMessage) and bool(reply.tool_calls or reply.invalid_tool_calls)
        return "tools" if wants_tools and state.get("stop") is None else END

    def after_tools(state: State) -> str:
        return END if state.get("stop") is not None else "model"

    graph = StateGraph(State)
    graph.add_node("model", call_model)
    graph.add_node("tools", call_tools)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", after_model, ["tools", END])
    graph.add_conditional_edges("tools", after_tools, ["model", END])
    return graph.compile()


async def run_agent(run: AgentRun, outcome: Outcome) -> AsyncIterator[Any]:
    """Yields the run's events as they happen and fills `outcome` with the answer or the reason it stopped."""
    graph = build_graph(run)
    state: dict[str, Any] = {}
    config = {"recursion_limit": 2 * run.max_steps + 4}
    start: State = {"messages": list[AnyMessage](run.messages), "steps": 0, "stop": None}  # type: ignore[arg-type]
    async for mode, payload in graph.astream(start, config=config, stream_mode=["custom", "values"]):
        if mode == "custom":
            yield payload
        else:
            state = payload
    outcome.steps = state.get("steps", 0)
    outcome.stop = state.get("stop")
    messages = state.get("messages", [])
    outcome.tool_results = [_text(m) for m in messages[len(run.messages) :] if isinstance(m, ToolMessage)]
    last = messages[-1] if messages else None
    if outcome.stop is not None:
        outcome.answer = outcome.stop.message
    elif isinstance(last, AIMessage):
        outcome.answer = _text(last)


def conversation_from(messages: list[dict[str, Any]]) -> list[BaseMessage]:
    """OpenAI-style messages from a request as LangChain messages (system text is kept as system)."""
    converted: list[BaseMessage] = []
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content) if content else ""
        role = message.get("role")
        if role in ("system", "developer"):
            converted.append(SystemMessage(text))
        elif role == "assistant":
            converted.append(AIMessage(text))
        elif role == "user":
            converted.append(HumanMessage(text))
    return converted
