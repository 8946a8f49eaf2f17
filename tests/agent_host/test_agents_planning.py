"""The planner's decomposition and aggregation with a scripted model, the router, agents.yaml checks, chat chunks."""

import json
from pathlib import Path
from typing import Any

import pytest
from account_support import somebody
from agent_support import ScriptedModel, call, events_of, offered_tools, say

from agent_host.agents.completions import open_chat_agent
from agent_host.agents.registry import AgentRegistry, AgentsFile, load_agents
from agent_host.agents.router import Router
from agent_host.agents.schemas import AgentRunRequest
from agent_host.agents.service import AgentService
from agent_host.config import SERVICE_DIR, Settings
from agent_host.errors import AgentConfigError, AgentNotFound, BadUpstreamRequest
from agent_host.rag.embeddings import MINILM, SentenceTransformerEmbedder, minilm_path
from agent_host.schemas import ChatCompletionRequest

TEAM = {
    "default_model": "fake-model",
    "default_agent": "assistant",
    "agents": [
        {"name": "assistant", "description": "General questions."},
        {"name": "math", "description": "Arithmetic.", "tools": ["calculator"]},
        {"name": "clock", "description": "Date and time.", "tools": ["current_time"]},
        {
            "name": "planner",
            "kind": "planner",
            "description": "Several tasks.",
            "agents": ["math", "clock", "assistant"],
        },
    ],
}
PLAN = {"steps": [{"task": "Compute 6*7", "agent": "math"}, {"task": "Tell the time in Tokyo", "agent": "clock"}]}


def service(base_url: str, config: dict[str, Any] = TEAM) -> AgentService:
    settings = Settings(agent_host_api_key="k", agent_host_proxy_key="k", litellm_base_url=base_url)  # type: ignore[arg-type]
    registry = AgentRegistry(AgentsFile.model_validate(config))
    return AgentService(settings, registry, Router(registry))


async def run(agents: AgentService, task: str, **fields: Any) -> list[dict[str, Any]]:
    prepared = await agents.prepare(AgentRunRequest(task=task, **fields), somebody())
    return [event.model_dump() async for event in agents.events(prepared) if event.type != "delta"]


def user_text(request: dict[str, Any]) -> str:
    return str([m for m in request["messages"] if m["role"] == "user"][-1]["content"])


async def test_the_planner_splits_the_task_runs_each_step_with_its_agent_and_combines_the_results() -> None:
    model = ScriptedModel(
        [
            say(json.dumps(PLAN)),
            call("calculator", expression="6*7"),
            say("6*7 is 42."),
            call("current_time", timezone="Asia/Tokyo"),
            say("It is noon in Tokyo."),
            say("6*7 is 42, and it is noon in Tokyo."),
        ]
    )
    with model.serving() as url:
        events = await run(service(url), "What is 6*7, and what time is it in Tokyo?", agent="planner")

    plan_request = model.requests[0]
    schema = plan_request["response_format"]["json_schema"]["schema"]
    assert plan_request["response_format"]["type"] == "json_schema" and "tools" not in plan_request
    assert schema["properties"]["steps"]["items"]["properties"]["agent"]["enum"] == ["math", "clock", "assistant"]
    assert "- math: Arithmetic." in plan_request["messages"][0]["content"]

    plan = events_of("plan", events)[0]
    assert [(s["index"], s["agent"], s["task"]) for s in plan["steps"]] == [
        (1, "math", "Compute 6*7"),
        (2, "clock", "Tell the time in Tokyo"),
    ]
    assert plan["fallback"] is None
    assert offered_tools(model.requests[1]) == ["calculator"] and user_text(model.requests[1]) == "Compute 6*7"
    assert offered_tools(model.requests[3]) == ["current_time"]
    assert "Results of the earlier steps:\n1. 6*7 is 42." in user_text(model.requests[3])
    combine = model.requests[5]
    assert "tools" not in combine and "6*7 is 42." in user_text(combine) and "noon in Tokyo" in user_text(combine)

    assert [(e["plan_step"], e["name"]) for e in events_of("tool_call", events)] == [
        (1, "calculator"),
        (2, "current_time"),
    ]
    done = [e for e in events_of("plan_step", events) if e["status"] == "done"]
    assert [d["answer"] for d in done] == ["6*7 is 42.", "It is noon in Tokyo."]
    assert events[-1]["content"] == "6*7 is 42, and it is noon in Tokyo." and events[-1]["tool_calls"] == 2


async def test_an_unusable_plan_becomes_one_step_for_the_default_agent() -> None:
    model = ScriptedModel([say('{"steps": [{"task": "x", "agent": "nobody"}]}'), say("Hello there.")])
    with model.serving() as url:
        events = await run(service(url), "hi", agent="planner")
    plan = events_of("plan", events)[0]
    assert "unknown agents: nobody" in plan["fallback"]
    assert [(s["agent"], s["task"]) for s in plan["steps"]] == [("assistant", "hi")]
    assert len(model.requests) == 2, "one step needs no combining call"
    assert events[-1]["content"] == "Hello there."


async def test_the_router_honours_a_named_agent_and_classifies_the_rest_by_keywords() -> None:
    router = Router(load_agents(SERVICE_DIR / "agents.yaml"))
    cases = {
        "Calculate 12 times 19": "math",
        "What time is it in Lima?": "clock",
        "Please remember my locker code": "notes",
        "Show me my saved notes": "recall",
        "What do my documents say about refunds?": "researcher",
        "Tell me a joke": "assistant",
        "What time is it in Lima, and then calculate 12 times 19?": "planner",
    }
    picked = {text: (await router.route(text))[0].name for text in cases}
    assert picked == cases
    agent, info = await router.route("Calculate 12 times 19", explicit="clock")
    assert agent.name == "clock" and info.method == "explicit"
    _, info = await router.route("Tell me a joke")
    assert info.method == "default", "nothing resembles the request: the default agent"
    with pytest.raises(AgentNotFound, match="'nobody' does not exist; agents: assistant"):
        await router.route("hi", explicit="nobody")


async def test_embeddings_route_a_paraphrase_that_shares_no_keyword() -> None:
    registry = load_agents(SERVICE_DIR / "agents.yaml")
    embedder = SentenceTransformerEmbedder(MINILM, minilm_path())

    async def source() -> SentenceTransformerEmbedder:
        return embedder

    text = "Is it morning in Sydney now?"
    keywords, _ = await Router(registry).route(text)
    agent, info = await Router(registry, source).route(text)
    assert keywords.name == "assistant", "no keyword of the clock agent appears in the request"
    assert agent.name == "clock" and info.method == "embedding"
    assert info.scores["clock"] == max(info.scores.values())


def test_the_shipped_agents_file_is_valid() -> None:
    registry = load_agents(SERVICE_DIR / "agents.yaml")
    assert registry.get(registry.config.default_agent).kind == "tools"
    assert {agent.kind for agent in registry.all()} == {"tools", "planner"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("agents: [", "not valid YAML"),
        ("default_model: m\ndefault_agent: a\nagents:\n  - name: a\n", "agents.0.description: Field required"),
        ("default_model: m\ndefault_agent: b\nagents:\n  - {name: a, description: d}\n", "default_agent 'b'"),
        ("default_model: m\ndefault_agent: a\nagents:\n  - {name: a, description: d, max_steps: 0}\n", "max_steps"),
        (
            "default_model: m\ndefault_agent: a\nagents:\n  - {name: a, description: d}\n  - {name: a, description: e}",
            "unique: a",
        ),
        (
            "default_model: m\ndefault_agent: a\nagents:\n  - name: a\n    description: d\n    tools: [calculator]\n"
            "    examples: [{request: r, tool: add_note, result: x, answer: y}]\n",
            "example tool 'add_note'",
        ),
    ],
)
def test_a_bad_agents_file_is_refused_with_the_file_and_field_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(content)
    with pytest.raises(AgentConfigError) as refused:
        load_agents(path)
    assert str(path) in refused.value.message and message in refused.value.message


def test_a_missing_agents_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="cannot read it"):
        load_agents(tmp_path / "absent.yaml")


async def test_a_chat_request_with_agent_options_streams_steps_in_chunks_then_the_answer() -> None:
    model = ScriptedModel([call("calculator", expression="2^10"), say("It is 1024."), say("Fine.")])
    request = ChatCompletionRequest(model="fake-model", messages=[{"role": "user", "content": "2^10?"}], stream=True)  # type: ignore[list-item]
    with model.serving() as url:
        agents = service(url)
        run = await open_chat_agent(agents, request, {"name": "math"}, somebody())
        chunks = [chunk.model_dump(exclude_unset=True) async for chunk in run.chunks()]
        again = await open_chat_agent(agents, request, {"name": "assistant"}, somebody())
        completion = (await again.complete()).model_dump()
    steps = [chunk["agent_step"]["type"] for chunk in chunks if "agent_step" in chunk]
    assert steps == ["start", "tool_call", "tool_result", "answer"]
    content = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
    assert content == "It is 1024." and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert completion["choices"][0]["message"]["content"] == "Fine."
    assert [step["type"] for step in completion["agent_steps"]] == ["start", "answer"]
    with pytest.raises(BadUpstreamRequest, match="invalid agent options"):
        await open_chat_agent(agents, request, {"name": "math", "colour": "red"}, somebody())
    with pytest.raises(AgentNotFound):
        await open_chat_agent(agents, request, {"name": "nobody"}, somebody())
