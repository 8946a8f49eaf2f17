"""The agents API on a real agent host process whose proxy is a scripted fake model."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_support import ScriptedModel, call, events_of, say, write_agents_file
from host_support import HOST_KEY, auth, new_session, sse_data, start_host
from rag_support import create_collection, txt, upload

from devstack.config import REPO_ROOT
from devstack.probe import free_port
from procs import MODEL_CACHE, PYTHON, PostgresInstance

AGENTS = [
    {"name": "assistant", "description": "General questions answered without tools."},
    {
        "name": "math",
        "description": "Arithmetic and calculations with numbers.",
        "tools": ["calculator"],
        "route_examples": ["What is 2 plus 2?"],
    },
    {"name": "keeper", "description": "Remember notes for the session.", "tools": ["add_note", "list_notes"]},
    {"name": "reader", "description": "Search the uploaded documents.", "tools": ["search_documents"]},
]


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[ScriptedModel, str]]:
    scripted = ScriptedModel([])
    with scripted.serving() as url:
        yield scripted, url


@pytest.fixture(scope="module")
def host(
    model: tuple[ScriptedModel, str], postgres: PostgresInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("agents-api")
    env = host_env(tmp, write_agents_file(tmp / "agents.yaml", AGENTS))
    process, url = start_host(model[1].removesuffix("/v1"), postgres.url("genailabs"), "fake-key", **env)
    yield url
    process.stop()


def host_env(tmp: Path, agents_file: Path) -> dict[str, str]:
    servers = tmp / "mcp_servers.json"
    servers.write_text('{"mcpServers": {}}')
    return {
        "AGENTS_FILE": str(agents_file),
        "MCP_SERVERS_FILE": str(servers),
        "CHROMA_PATH": str(tmp / "chroma"),
        "MODEL_CACHE_DIR": str(MODEL_CACHE),
        "HF_HUB_OFFLINE": "1",
        "HOME": str(tmp),  # Chroma's own cache
    }


def stream_run(url: str, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]], list[str]]:
    with httpx.stream("POST", f"{url}/agents/run", json={**body, "stream": True}, headers=auth(), timeout=60) as r:
        lines = [line for line in r.iter_lines() if line]
    return r, sse_data(lines), lines


def test_the_agents_are_listed_with_the_tools_they_can_call(host: str) -> None:
    response = httpx.get(f"{host}/agents", headers=auth(), timeout=10)
    assert response.status_code == 200
    agents = {agent["name"]: agent for agent in response.json()}
    assert list(agents) == ["assistant", "math", "keeper", "reader"]
    assert agents["keeper"]["tools"] == ["add_note", "list_notes"] and agents["assistant"]["tools"] == []
    assert agents["math"]["model"] == "fake-model" and agents["math"]["max_steps"] >= 1


def test_a_streamed_run_sends_every_step_as_an_sse_event(host: str, model: tuple[ScriptedModel, str]) -> None:
    model[0].script([call("calculator", expression="2+2"), say("2 plus 2 is 4.")])
    response, events, lines = stream_run(host, {"task": "What is 2 plus 2?"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-agent"] == "math" and lines[-1] == "data: [DONE]"
    assert [e["type"] for e in events if e["type"] != "delta"] == ["start", "tool_call", "tool_result", "answer"]
    start = events[0]
    assert start["agent"] == "math" and start["route"]["method"] == "keywords" and start["tools"] == ["calculator"]
    assert events_of("tool_result", events)[0]["content"] == "4"
    assert "".join(e["text"] for e in events_of("delta", events)) == "2 plus 2 is 4."
    assert events[-1]["content"] == "2 plus 2 is 4."


def test_a_run_without_stream_returns_the_steps_and_the_answer(host: str, model: tuple[ScriptedModel, str]) -> None:
    session_id = new_session(host)
    model[0].script([call("add_note", text="Buy milk"), say("Noted.")])
    body = {"task": "Remember to buy milk", "agent": "keeper", "session_id": session_id}
    response = httpx.post(f"{host}/agents/run", json=body, headers=auth(), timeout=60)
    assert response.status_code == 200
    result = response.json()
    assert result["agent"] == "keeper" and result["answer"] == "Noted." and result["stopped_by"] is None
    assert [step["type"] for step in result["steps"]] == ["start", "tool_call", "tool_result", "answer"]
    assert result["steps"][2]["content"].startswith("saved note")


def test_document_search_finds_passages_of_an_uploaded_file(host: str, model: tuple[ScriptedModel, str]) -> None:
    create_collection(host, "manuals")
    text = "Returns. The warranty lasts two years from the date of purchase and covers parts and labour."
    assert upload(host, "manuals", [txt("warranty.txt", text)]).status_code in (200, 201)
    model[0].script([call("search_documents", query="how long is the warranty"), say("Two years.")])
    _, events, _ = stream_run(host, {"task": "How long is the warranty?", "agent": "reader"})
    result = events_of("tool_result", events)[0]
    assert not result["is_error"] and result["content"].startswith("[1] warranty.txt")
    assert "two years from the date of purchase" in result["content"]
    assert "warranty.txt" in str(model[0].requests[1]["messages"][-1]["content"])


def test_a_model_failure_mid_stream_ends_with_an_error_event(host: str, model: tuple[ScriptedModel, str]) -> None:
    model[0].script([])  # the fake model answers 500
    response, events, lines = stream_run(host, {"task": "hi", "agent": "assistant"})
    assert response.status_code == 200 and lines[-1] == "data: [DONE]"
    assert [e["type"] for e in events] == ["start", "error"]
    assert events[-1]["error"]["type"] in ("upstream_error", "proxy_unavailable")
    plain = httpx.post(f"{host}/agents/run", json={"task": "hi", "agent": "assistant"}, headers=auth(), timeout=60)
    assert plain.status_code in (502, 503) and plain.json()["error"]["type"] == events[-1]["error"]["type"]


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"task": "hi", "agent": "nobody"}, 404, "agent_not_found"),
        ({"agent": "math"}, 422, "invalid_request"),
        ({"task": "hi", "messages": [{"role": "user", "content": "hi"}]}, 422, "invalid_request"),
        ({"task": "hi", "max_steps": 0}, 422, "invalid_request"),
    ],
)
def test_bad_run_requests_are_refused_before_anything_runs(
    host: str, body: dict[str, Any], status: int, kind: str
) -> None:
    response = httpx.post(f"{host}/agents/run", json={**body, "stream": True}, headers=auth(), timeout=30)
    assert response.status_code == status and response.json()["error"]["type"] == kind


def test_the_agents_routes_need_the_key(host: str) -> None:
    assert httpx.get(f"{host}/agents", timeout=10).status_code == 401
    wrong = {"Authorization": f"Bearer {HOST_KEY}x"}
    assert httpx.post(f"{host}/agents/run", json={"task": "hi"}, headers=wrong, timeout=10).status_code == 401


def test_a_bad_agents_file_stops_the_host_with_a_readable_message(tmp_path: Path) -> None:
    bad = tmp_path / "agents.yaml"
    bad.write_text("default_model: m\ndefault_agent: ghost\nagents:\n  - {name: a, description: d}\n")
    env = {**os.environ, "AGENT_HOST_API_KEY": "k", "AGENT_HOST_PROXY_KEY": "k", **host_env(tmp_path, bad)}
    # Run directly: the host exits on its own, and ManagedProcess.start would wait out its whole start-up timeout.
    argv = [PYTHON, "-m", "agent_host", "--port", str(free_port())]
    done = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert (
        done.stderr.strip().splitlines()[-1] == f"agent_host: agents file {bad}: default_agent 'ghost' is not defined"
    )
