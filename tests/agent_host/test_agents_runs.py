"""Agent runs with a scripted fake model: real tools, real PostgreSQL notes, the real HTTP path to the model."""

import asyncio
from typing import Any

from account_support import stored_person
from agent_support import ScriptedModel, call, calls, events_of, offered_tools, say, tool_messages
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel

from agent_host.agents.notes import NotesStore
from agent_host.agents.registry import AgentRegistry, AgentsFile
from agent_host.agents.router import Router
from agent_host.agents.schemas import AgentRunRequest
from agent_host.agents.service import AgentService
from agent_host.config import Settings
from agent_host.db import owner_id
from agent_host.schemas import SessionCreate
from agent_host.sessions.store import SessionStore
from genailabs_accounts.models import Account

AGENTS = {
    "default_model": "fake-model",
    "default_agent": "helper",
    "agents": [
        {
            "name": "helper",
            "description": "Uses every built-in tool.",
            "tools": ["calculator", "current_time", "add_note", "list_notes", "search_documents", "wait"],
        }
    ],
}


class WaitArgs(BaseModel):
    seconds: float


async def wait(seconds: float) -> str:
    """Wait this many seconds, then answer."""
    await asyncio.sleep(seconds)
    return f"waited {seconds}"


WAIT_TOOL: BaseTool = StructuredTool.from_function(coroutine=wait, args_schema=WaitArgs, description=wait.__doc__)


def service(base_url: str, pool: Any, **overrides: Any) -> AgentService:
    settings = Settings(agent_host_api_key="k", agent_host_proxy_key="k", litellm_base_url=base_url, **overrides)
    registry = AgentRegistry(AgentsFile.model_validate(AGENTS))
    return AgentService(settings, registry, Router(registry), NotesStore(pool), extra_tools=[WAIT_TOOL])


async def run(
    agents: AgentService, task: str = "do it", person: Account | None = None, **fields: Any
) -> list[dict[str, Any]]:
    """The run's events; as `person`, else as a new account."""
    assert agents.notes is not None
    person = person or await stored_person(agents.notes.pool)
    prepared = await agents.prepare(AgentRunRequest(task=task, stream=True, **fields), person)
    return [event.model_dump() async for event in agents.events(prepared)]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events if event["type"] != "delta"]


async def test_a_run_calls_the_calculator_then_answers_from_its_result(pool: Any) -> None:
    model = ScriptedModel([call("calculator", expression="37*91"), say("37 times 91 is 3367.")])
    with model.serving() as url:
        events = await run(service(url, pool), "What is 37 * 91?")
    assert kinds(events) == ["start", "tool_call", "tool_result", "answer"]
    assert events_of("tool_call", events)[0]["arguments"] == {"expression": "37*91"}
    result = events_of("tool_result", events)[0]
    assert result["content"] == "3367" and not result["is_error"] and result["latency_ms"] >= 0
    assert tool_messages(model.requests[1]) == ["3367"], "the tool's result went back to the model"
    assert sorted(offered_tools(model.requests[0])) == sorted(AGENTS["agents"][0]["tools"])  # type: ignore[index]
    answer = events[-1]
    assert answer["content"] == "37 times 91 is 3367." and answer["steps"] == 2 and answer["tool_calls"] == 1


async def test_text_the_model_writes_beside_a_tool_call_is_reported_as_a_thought(pool: Any) -> None:
    model = ScriptedModel([call("calculator", content="I should multiply.", expression="6*7"), say("42.")])
    with model.serving() as url:
        events = await run(service(url, pool))
    assert kinds(events) == ["start", "thought", "tool_call", "tool_result", "answer"]
    assert events_of("thought", events)[0]["text"] == "I should multiply."
    assert events[-1]["content"] == "42."


async def test_arguments_that_break_the_schema_go_back_as_an_error_and_the_run_continues(pool: Any) -> None:
    model = ScriptedModel([call("calculator", expr="1+1"), call("calculator", expression="1+1"), say("It is 2.")])
    with model.serving() as url:
        events = await run(service(url, pool))
    first, second = events_of("tool_result", events)
    assert first["is_error"] and "invalid arguments for calculator" in first["content"]
    assert "expression" in first["content"], "the error names the field the model has to send"
    assert not second["is_error"] and second["content"] == "2"
    assert "invalid arguments" in tool_messages(model.requests[1])[0]
    assert events[-1]["content"] == "It is 2." and events[-1]["stopped_by"] is None


async def test_broken_json_arguments_and_unknown_tools_are_error_results(pool: Any) -> None:
    model = ScriptedModel([call("calculator", '{"expression": "1+'), call("shell", command="ls"), say("Sorry.")])
    with model.serving() as url:
        events = await run(service(url, pool))
    broken, unknown = events_of("tool_result", events)
    assert broken["is_error"] and "not a JSON object" in broken["content"]
    assert unknown["is_error"] and "unknown tool 'shell'" in unknown["content"] and "calculator" in unknown["content"]
    assert events[-1]["content"] == "Sorry."


async def test_a_tool_that_fails_is_an_error_result_not_a_failed_run(pool: Any) -> None:
    model = ScriptedModel([call("calculator", expression="1/0"), call("current_time", timezone="Mars/Base"), say("ok")])
    with model.serving() as url:
        events = await run(service(url, pool))
    division, zone = events_of("tool_result", events)
    assert division["is_error"] and division["content"] == "division by zero"
    assert zone["is_error"] and "unknown timezone" in zone["content"]
    assert events[-1]["type"] == "answer"


async def test_a_tool_slower_than_the_per_tool_timeout_is_cut_and_the_run_goes_on(pool: Any) -> None:
    model = ScriptedModel([call("wait", seconds=30), say("The wait was cut.")])
    with model.serving() as url:
        events = await run(service(url, pool, agent_tool_timeout=0.5))
    result = events_of("tool_result", events)[0]
    assert result["is_error"] and "timed out after 0.5 s" in result["content"]
    assert events[-1]["content"] == "The wait was cut." and events[-1]["stopped_by"] is None


async def test_max_steps_stops_a_model_that_keeps_calling_tools(pool: Any) -> None:
    script = [call("calculator", expression=f"{n}+{n}") for n in range(1, 6)]
    model = ScriptedModel(script)
    with model.serving() as url:
        events = await run(service(url, pool), max_steps=3)
    assert len(model.requests) == 3
    assert "tools" in model.requests[1] and "tools" not in model.requests[2], "the last step offers no tools"
    limit = events_of("limit", events)[0]
    assert limit["kind"] == "max_steps" and "3 steps" in limit["message"]
    assert events[-1]["stopped_by"] == "max_steps" and events[-1]["content"] == limit["message"]


async def test_max_tool_calls_stops_the_run_at_the_call_over_the_limit(pool: Any) -> None:
    model = ScriptedModel(
        [
            calls(
                ("calculator", {"expression": "1+1"}),
                ("calculator", {"expression": "2+2"}),
                ("calculator", {"expression": "3+3"}),
            )
        ]
    )
    with model.serving() as url:
        events = await run(service(url, pool), max_tool_calls=2)
    assert [e["content"] for e in events_of("tool_result", events)] == ["2", "4"]
    assert len(events_of("tool_call", events)) == 3, "the refused call is still shown"
    assert events_of("limit", events)[0]["kind"] == "max_tool_calls"
    assert events[-1]["stopped_by"] == "max_tool_calls" and events[-1]["tool_calls"] == 2


async def test_the_same_call_again_and_again_is_cut_as_a_loop(pool: Any) -> None:
    model = ScriptedModel([call("calculator", expression="2+2") for _ in range(5)])
    with model.serving() as url:
        events = await run(service(url, pool))
    assert len(events_of("tool_result", events)) == 2
    limit = events_of("limit", events)[0]
    assert limit["kind"] == "loop" and "calculator was called 3 times" in limit["message"]
    assert events[-1]["stopped_by"] == "loop" and len(model.requests) == 3


async def test_the_total_time_limit_ends_a_run_whose_model_is_too_slow(pool: Any) -> None:
    model = ScriptedModel([say("too late", delay=20)])
    with model.serving() as url:
        events = await run(service(url, pool, agent_total_timeout=1.0))
    assert kinds(events) == ["start", "limit", "answer"]
    assert events[-1]["stopped_by"] == "total_time" and "1 s" in events[-1]["content"]


async def test_a_long_tool_result_is_capped_before_it_reaches_the_model(pool: Any) -> None:
    store, person = SessionStore(pool), await stored_person(pool)
    session = await store.create(owner_id(person), SessionCreate(title="notes"))
    notes = NotesStore(pool)
    for number in range(30):
        await notes.add(owner_id(person), session.id, f"note number {number} with some words to make it longer")
    model = ScriptedModel([call("list_notes"), say("You have many notes.")])
    with model.serving() as url:
        events = await run(service(url, pool, tool_result_max_chars=200), person=person, session_id=session.id)
    result = events_of("tool_result", events)[0]
    assert result["truncated"] and len(result["content"]) <= 200 and "truncated" in result["content"]
    assert result["content"].startswith("1. note number 0")
    sent = tool_messages(model.requests[1])[0]
    assert len(sent) <= 200 and sent == result["content"]


async def test_notes_are_kept_per_session_and_need_one(pool: Any) -> None:
    store, person = SessionStore(pool), await stored_person(pool)
    session = await store.create(owner_id(person), SessionCreate(title="notes"))
    model = ScriptedModel(
        [
            call("add_note", text="Flight at 9am"),
            call("list_notes"),
            say("Saved."),
            call("add_note", text="x"),
            say("No."),
        ]
    )
    with model.serving() as url:
        agents = service(url, pool)
        with_session = await run(agents, person=person, session_id=session.id)
        without = await run(agents, person=person)
    added, listed = events_of("tool_result", with_session)
    assert added["content"].startswith("saved note") and listed["content"].endswith("Flight at 9am")
    assert [n.text for n in await NotesStore(pool).list_notes(owner_id(person), session.id)] == ["Flight at 9am"]
    refused = events_of("tool_result", without)[0]
    assert refused["is_error"] and "need a session" in refused["content"]


async def test_document_search_without_rag_says_so(pool: Any) -> None:
    model = ScriptedModel([call("search_documents", query="warranty"), say("No documents.")])
    with model.serving() as url:
        events = await run(service(url, pool))
    result = events_of("tool_result", events)[0]
    assert result["is_error"] and "RAG is not enabled" in result["content"]


async def test_a_model_failure_ends_the_stream_with_an_error_event(pool: Any) -> None:
    model = ScriptedModel([])  # answers 500 to everything
    with model.serving() as url:
        events = await run(service(url, pool))
    assert kinds(events) == ["start", "error"]
    assert events[-1]["error"]["type"] in ("upstream_error", "proxy_unavailable")
