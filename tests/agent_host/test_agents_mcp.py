"""Agents calling MCP tools: the example files server over stdio and the test server over streamable HTTP."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from account_support import somebody
from agent_support import ScriptedModel, call, events_of, offered_tools, say, tool_messages
from mcp_support import files_server_entry, http_entry, mcp_settings, start_mcp_http_server, write_servers_file

from agent_host.agents.registry import AgentRegistry, AgentsFile
from agent_host.agents.router import Router
from agent_host.agents.schemas import AgentRunRequest
from agent_host.agents.service import AgentService
from agent_host.mcp.manager import McpManager, open_mcp, public
from procs import ManagedProcess

pytestmark = pytest.mark.asyncio(loop_scope="session")
AGENTS = {
    "default_model": "fake-model",
    "default_agent": "toolbox",
    "agents": [{"name": "toolbox", "description": "MCP tools.", "tools": ["files__read_file", "web__*"]}],
}


@pytest.fixture(scope="module")
def web_server() -> Iterator[tuple[ManagedProcess, str]]:
    process, url = start_mcp_http_server("web")
    yield process, url
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def manager(
    web_server: tuple[ManagedProcess, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[McpManager]:
    tmp = tmp_path_factory.mktemp("agents-mcp")
    (tmp / "notes").mkdir()
    (tmp / "notes" / "hello.txt").write_text("The launch code is 42.")
    servers = {"files": files_server_entry(tmp / "notes"), "web": http_entry(web_server[1])}
    async with open_mcp(mcp_settings(write_servers_file(tmp / "mcp.json", servers))) as manager:
        await manager.wait_ready(60)
        assert {server.name: server.status for server in manager.servers()} == {"files": "up", "web": "up"}
        yield manager


def service(manager: McpManager, base_url: str, **overrides: Any) -> AgentService:
    settings = mcp_settings(manager.path, litellm_base_url=base_url, **overrides)
    registry = AgentRegistry(AgentsFile.model_validate(AGENTS))
    return AgentService(settings, registry, Router(registry), mcp=manager)


async def run(agents: AgentService, task: str = "go") -> list[dict[str, Any]]:
    prepared = await agents.prepare(AgentRunRequest(task=task), somebody())
    return [event.model_dump() async for event in agents.events(prepared) if event.type != "delta"]


def calls_of(manager: McpManager, server: str, tool: str) -> int:
    return next(t.calls for t in public(manager.server(server)).tools if t.qualified_name == tool)


async def test_an_agent_run_uses_a_tool_from_each_mcp_server(manager: McpManager) -> None:
    model = ScriptedModel(
        [
            call("web__add", a=2, b=3),
            call("files__read_file", path="hello.txt"),
            say("2 plus 3 is 5, and the launch code is 42."),
        ]
    )
    with model.serving() as url:
        events = await run(service(manager, url), "Add 2 and 3, then read hello.txt")
    assert [e["type"] for e in events] == ["start", "tool_call", "tool_result", "tool_call", "tool_result", "answer"]
    assert events[0]["tools"] == ["files__read_file", "web__add", "web__echo", "web__sleep", "web__big", "web__fail"]
    added, read = events_of("tool_result", events)
    assert (added["name"], added["content"], added["is_error"]) == ("web__add", "5", False)
    assert (read["name"], read["content"], read["is_error"]) == ("files__read_file", "The launch code is 42.", False)
    assert tool_messages(model.requests[2]) == ["5", "The launch code is 42."]
    add_tool = next(t for t in model.requests[0]["tools"] if t["function"]["name"] == "web__add")
    assert add_tool["function"]["description"] == "Add two integers."
    assert add_tool["function"]["parameters"]["properties"]["a"]["type"] == "integer"
    assert "files__write_note" not in offered_tools(model.requests[0]), "only the agent's tools are offered"


async def test_bad_mcp_arguments_never_reach_the_server_and_the_run_continues(manager: McpManager) -> None:
    before = calls_of(manager, "web", "web__add")
    model = ScriptedModel([call("web__add", a="two", b=3), call("web__add", a=2, b=3), say("5")])
    with model.serving() as url:
        events = await run(service(manager, url))
    refused, added = events_of("tool_result", events)
    assert (
        refused["is_error"] and "invalid arguments for web__add" in refused["content"] and "'two'" in refused["content"]
    )
    assert added["content"] == "5" and events[-1]["content"] == "5"
    assert calls_of(manager, "web", "web__add") == before + 1, "only the valid call went to the server"


async def test_a_hanging_mcp_tool_is_cut_at_the_tool_timeout(manager: McpManager) -> None:
    model = ScriptedModel([call("web__sleep", seconds=60), say("It hung.")])
    with model.serving() as url:
        events = await run(service(manager, url, agent_tool_timeout=1.0))
    result = events_of("tool_result", events)[0]
    assert result["is_error"] and "timed out" in result["content"]
    assert events[-1]["content"] == "It hung." and events[-1]["stopped_by"] is None


async def test_a_failing_or_oversized_mcp_tool_comes_back_as_a_result(manager: McpManager) -> None:
    model = ScriptedModel([call("web__fail", message="disk full"), call("web__big", size=50_000), say("ok")])
    with model.serving() as url:
        events = await run(service(manager, url, tool_result_max_chars=300))
    failed, big = events_of("tool_result", events)
    assert failed["is_error"] and "disk full" in failed["content"]
    assert not big["is_error"] and big["truncated"] and len(big["content"]) <= 300
    assert big["content"].startswith("0123456789")
