"""Agent runs with the real smollm2:135m: agent host → proxy → runtime → tool call → tool result → answer.

The model's wording is not asserted, only the sequence of events and that each tool really ran on the
arguments the model wrote.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from agent_support import events_of
from host_support import auth, shared_master_key, sse_data, start_host
from mcp_support import http_entry, start_mcp_http_server, write_servers_file

from agent_host.agents.calculator import evaluate
from agent_host.config import SERVICE_DIR
from procs import PostgresInstance

# An agent for the test server's add tool, with the worked example small models need (see agents.yaml).
ADDER = {
    "name": "adder",
    "description": "Adds two whole numbers with the web server's add tool.",
    "tools": ["web__add"],
    "max_steps": 3,
    "examples": [
        {
            "request": "What is 12 plus 30?",
            "tool": "web__add",
            "arguments": {"a": 12, "b": 30},
            "result": "42",
            "answer": "12 plus 30 is 42.",
        }
    ],
}


@pytest.fixture(scope="module")
def host(proxy: str, postgres: PostgresInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("agents-real")
    config = yaml.safe_load((SERVICE_DIR / "agents.yaml").read_text())
    config["agents"].append(ADDER)
    (tmp / "agents.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    web, web_url = start_mcp_http_server("web")
    env = {
        "AGENTS_FILE": str(tmp / "agents.yaml"),
        "MCP_SERVERS_FILE": str(write_servers_file(tmp / "mcp.json", {"web": http_entry(web_url)})),
        "CHROMA_PATH": str(tmp / "chroma"),
    }
    process, url = start_host(proxy, postgres.url("genailabs"), shared_master_key(), **env)
    yield url
    process.stop()
    web.stop()


def streamed_run(host: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.stream("POST", f"{host}/agents/run", json={**body, "stream": True}, headers=auth(), timeout=300) as r:
        assert r.status_code == 200
        return sse_data([line for line in r.iter_lines() if line])


def assert_tool_then_answer(events: list[dict[str, Any]], tool: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """start → the tool's call → its result → the answer streamed after it; returns (call, result)."""
    assert events[-1]["type"] != "error", events[-1]
    assert [e["type"] for e in events if e["type"] != "delta"] == ["start", "tool_call", "tool_result", "answer"]
    kinds = [e["type"] for e in events]
    assert all(kinds.index("tool_result") < i for i, kind in enumerate(kinds) if kind == "delta")
    tool_call, result = events_of("tool_call", events)[0], events_of("tool_result", events)[0]
    assert tool_call["name"] == tool and result["id"] == tool_call["id"] and not result["is_error"], result
    answer = events[-1]
    assert answer["tool_calls"] == 1 and answer["steps"] == 2 and answer["stopped_by"] is None
    assert answer["content"].strip()
    return tool_call, result


def test_smollm2_calls_the_calculator_and_answers_after_its_result(host: str) -> None:
    events = streamed_run(host, {"task": "What is 37 * 91?", "agent": "math"})
    tool_call, result = assert_tool_then_answer(events, "calculator")
    assert result["content"] == evaluate(tool_call["arguments"]["expression"]), "the calculator ran on the model's call"
    assert events[0]["model"] == "smollm2:135m"


def test_a_request_routed_to_the_clock_agent_gets_the_time_from_its_tool(host: str) -> None:
    events = streamed_run(host, {"task": "What time is it in Tokyo?"})
    assert events[0]["agent"] == "clock" and events[0]["route"]["method"] in ("keywords", "embedding")
    tool_call, result = assert_tool_then_answer(events, "current_time")
    assert tool_call["arguments"].get("timezone", "UTC") in result["content"]


def test_smollm2_calls_an_mcp_tool_over_streamable_http(host: str) -> None:
    events = streamed_run(host, {"task": "What is 17 plus 25?", "agent": "adder"})
    tool_call, result = assert_tool_then_answer(events, "web__add")
    arguments = tool_call["arguments"]
    assert result["content"] == str(arguments["a"] + arguments["b"]), "the MCP server added the model's numbers"
