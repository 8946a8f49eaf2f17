"""The host's MCP manager against real servers: stdio and streamable HTTP, dead ones, hanging tools, big results."""

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator

import psutil
import pytest
import pytest_asyncio
from mcp_support import (
    files_server_entry,
    http_entry,
    mcp_http_server,  # noqa: F401  # a fixture
    mcp_settings,
    saved_servers,
    start_mcp_http_server,
    write_servers_file,
)

from agent_host.mcp.config import McpServerConfig
from agent_host.mcp.manager import McpManager, open_mcp, public
from devstack.probe import free_port
from procs import ManagedProcess, PostgresInstance, scaled

pytestmark = pytest.mark.asyncio(loop_scope="session")
RESULT_LIMIT = 1000


@pytest.fixture(scope="module")
def flaky_server() -> Iterator[tuple[ManagedProcess, str]]:
    """An HTTP server the tests stop and start again on the same port."""
    process, url = start_mcp_http_server("flaky")
    yield process, url
    process.stop()


@pytest.fixture(scope="module")
def database_url(postgres: PostgresInstance) -> str:
    """The module's own genailabs database: the servers it adds are no other test's."""
    return postgres.new_database("mcp_client")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def manager(
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
    flaky_server: tuple[ManagedProcess, str],
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
) -> AsyncIterator[McpManager]:
    tmp = tmp_path_factory.mktemp("mcp-client")
    servers = {
        "files": files_server_entry(tmp / "notes"),
        "web": http_entry(mcp_http_server[1]),
        "flaky": http_entry(flaky_server[1]),
        "broken": {"command": "python", "args": ["-c", "import sys; sys.exit('boom: missing API token')"]},
        "refused": http_entry(f"http://127.0.0.1:{free_port()}/mcp"),
        "silent": {"command": "python", "args": ["-c", "import time; time.sleep(120)"]},
    }
    path = write_servers_file(tmp / "mcp.json", servers)
    # Long enough for the stdio server's start on a busy machine; the silent server's test waits it out once.
    settings = mcp_settings(
        path,
        database_url,
        tool_result_max_chars=RESULT_LIMIT,
        mcp_connect_timeout=scaled(8.0),
        mcp_allowed_hosts="127.0.0.1",
    )
    async with open_mcp(settings) as manager:
        await manager.wait_ready(60)
        yield manager


async def wait_for_status(manager: McpManager, name: str, status: str, timeout: float = 20.0) -> None:
    for _ in range(int(scaled(timeout) / 0.2)):
        if manager.server(name).status == status:
            return
        await asyncio.sleep(0.2)
    server = manager.server(name)
    raise AssertionError(f"{name} stayed {server.status}: {server.error}")


async def test_tools_of_both_transports_are_namespaced(manager: McpManager) -> None:
    names = {tool.qualified_name for tool in manager.tools()}
    assert {"files__read_file", "files__write_note", "web__add", "web__sleep"} <= names
    add = next(tool for tool in manager.tools() if tool.qualified_name == "web__add")
    assert (add.server, add.name, add.description) == ("web", "add", "Add two integers.")
    assert add.input_schema["required"] == ["a", "b"]
    write = next(tool for tool in manager.tools() if tool.qualified_name == "files__write_note")
    assert not write.description.startswith(" ") and "\n        " not in write.description


async def test_a_tool_of_each_transport_answers(manager: McpManager) -> None:
    added = await manager.call("web__add", {"a": 20, "b": 22})
    assert (added.text, added.is_error) == ("42", False)
    written = await manager.call("files__write_note", {"path": "from-test.md", "content": "stdio works"})
    assert not written.is_error, written.text
    read = await manager.call("files__read_file", {"path": "from-test.md"})
    assert (read.text, read.is_error) == ("stdio works", False)


async def test_dead_servers_are_down_with_their_error_while_the_rest_work(manager: McpManager) -> None:
    broken, refused, silent = manager.server("broken"), manager.server("refused"), manager.server("silent")
    assert broken.status == "down" and "boom: missing API token" in (broken.error or "")
    assert refused.status == "down" and "ConnectError" in (refused.error or "")
    assert silent.status == "down" and "connect timeout" in (silent.error or "")
    assert not {tool.server for tool in manager.tools()} & {"broken", "refused", "silent"}
    assert (await manager.call("web__add", {"a": 1, "b": 1})).text == "2"


async def test_a_hanging_tool_is_cut_at_the_timeout(manager: McpManager) -> None:
    outcome = await manager.call("web__sleep", {"seconds": 60}, timeout=1.0)
    assert outcome.is_error and "timed out after 1 s" in outcome.text
    assert manager.server("web").status == "up"
    assert (await manager.call("web__echo", {"text": "still here"})).text == "still here"


async def test_a_big_result_is_capped_and_says_so(manager: McpManager) -> None:
    outcome = await manager.call("web__big", {"size": 50_000})
    assert outcome.truncated and not outcome.is_error
    assert len(outcome.text) <= RESULT_LIMIT and outcome.text.startswith("0123456789")
    assert "of 50000 characters" in outcome.text


async def test_bad_calls_come_back_as_error_results(manager: McpManager) -> None:
    wrong_type = await manager.call("web__add", {"a": "one", "b": 2})
    assert wrong_type.is_error and "invalid arguments for web__add" in wrong_type.text
    not_a_tool = await manager.call("web__subtract", {"a": 1})
    assert not_a_tool.is_error and "unknown MCP tool" in not_a_tool.text and "web__add" in not_a_tool.text
    failing = await manager.call("web__fail", {"message": "disk on fire"})
    assert failing.is_error and "disk on fire" in failing.text


async def test_calls_errors_and_latency_are_counted_per_tool(manager: McpManager) -> None:
    before = manager.server("web").stats["echo"].calls
    for arguments in ({"text": "a"}, {"text": "b"}, {"text": 3}):
        await manager.call("web__echo", arguments)
    echo = next(tool for tool in public(manager.server("web")).tools if tool.name == "echo")
    assert echo.calls == before + 3
    assert echo.errors >= 1 and "invalid arguments" in (echo.last_error or "")
    assert echo.latency_ms is not None and echo.latency_ms.p95 >= echo.latency_ms.p50 > 0


async def test_an_http_server_that_dies_is_marked_down_and_back_up_when_it_returns(
    manager: McpManager, flaky_server: tuple[ManagedProcess, str]
) -> None:
    process, _ = flaky_server
    assert (await manager.call("flaky__add", {"a": 1, "b": 2})).text == "3"
    process.stop()
    failed = await manager.call("flaky__add", {"a": 1, "b": 2})
    assert failed.is_error
    await wait_for_status(manager, "flaky", "down")
    assert "flaky__add" not in {tool.qualified_name for tool in manager.tools()}
    process.start()  # same port: the retry loop finds it again
    await wait_for_status(manager, "flaky", "up")
    assert (await manager.call("flaky__add", {"a": 2, "b": 2})).text == "4"


async def test_a_stdio_server_that_dies_is_detected_and_restarted(manager: McpManager) -> None:
    def files_servers() -> list[psutil.Process]:
        found = []
        for child in psutil.Process(os.getpid()).children(recursive=True):
            try:
                if "agent_host.mcp.examples.files_server" in child.cmdline():
                    found.append(child)
            except (psutil.ZombieProcess, psutil.NoSuchProcess):
                continue  # the killed server, not reaped yet
        return found

    [first] = files_servers()
    os.kill(first.pid, signal.SIGKILL)
    await manager.call("files__list_files", {})  # fails, and makes the manager look at the server at once
    await wait_for_status(manager, "files", "down")
    await wait_for_status(manager, "files", "up")
    [second] = files_servers()
    assert second.pid != first.pid
    assert not (await manager.call("files__list_files", {})).is_error


async def test_refresh_reconnects_and_rediscovers(manager: McpManager) -> None:
    before = manager.server("web").connected_at
    server = await manager.refresh("web")
    assert server.status == "up" and server.connected_at is not None and server.connected_at != before
    assert "web__add" in {tool.qualified_name for tool in manager.tools()}


async def test_runtime_additions_are_saved_in_the_database_and_removals_forgotten(
    manager: McpManager,
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    operators_file = manager.path.read_bytes()
    added = await manager.add("scratch", McpServerConfig(**http_entry(mcp_http_server[1])))
    assert added.status == "up" and "scratch__echo" in {tool.qualified_name for tool in manager.tools()}
    assert saved_servers(database_url)["scratch"] == {"url": mcp_http_server[1]}
    await manager.remove("scratch")
    assert "scratch" not in saved_servers(database_url)
    assert not any(tool.server == "scratch" for tool in manager.tools())
    assert manager.path.read_bytes() == operators_file
    assert not manager.legacy_path.exists(), "the run-time file is never written"
