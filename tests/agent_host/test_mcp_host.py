"""A real agent host process: its MCP servers API, and its own MCP server at /mcp used by the official client."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from host_support import auth, start_host
from mcp.types import CallToolResult
from mcp_support import (
    ADMIN_KEY,
    admin_auth,
    files_server_entry,
    host_mcp_client,
    http_entry,
    mcp_host_env,
    mcp_http_server,  # noqa: F401  # a fixture
    saved_servers,
    start_mcp_http_server,
    wait_for_server,
    write_servers_file,
)

from devstack.probe import free_port
from procs import ManagedProcess, PostgresInstance

HEADER_SECRET = "sk-header-secret-123"
# These tests never chat: the host gets a proxy address nobody listens on.
NO_PROXY = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def database_url(postgres: PostgresInstance) -> str:
    """The module's own genailabs database: the servers added here are no other test host's."""
    return postgres.new_database("mcp_host")


@pytest.fixture(scope="module")
def mcp_host(
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path]]:
    """(host URL, its servers file): the files server over stdio and the test server over HTTP."""
    tmp = tmp_path_factory.mktemp("mcp-host")
    servers = {
        "files": files_server_entry(tmp / "notes"),
        "web": http_entry(mcp_http_server[1], **{"X-Api-Key": HEADER_SECRET}),
    }
    path = write_servers_file(tmp / "mcp.json", servers)
    env = {**mcp_host_env(tmp, path), "AGENT_HOST_ADMIN_KEY": ADMIN_KEY, "MCP_ALLOWED_HOSTS": "127.0.0.1"}
    process, url = start_host(NO_PROXY, database_url, "unused-proxy-key", **env)
    yield url, path
    process.stop()


def text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def post_server(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/mcp/servers", json=body, headers=admin_auth(), timeout=60)


def test_servers_listing_shows_both_transports_up_with_their_tools(mcp_host: tuple[str, Path]) -> None:
    url, _ = mcp_host
    assert wait_for_server(url, "files")["status"] == "up"
    assert wait_for_server(url, "web")["status"] == "up"
    response = httpx.get(f"{url}/mcp/servers", headers=auth(), timeout=30)
    servers = {server["name"]: server for server in response.json()}
    assert {name: server["transport"] for name, server in servers.items()} == {"files": "stdio", "web": "http"}
    files_tools = {tool["qualified_name"] for tool in servers["files"]["tools"]}
    assert {"files__read_file", "files__write_note", "files__list_files"} <= files_tools
    add = next(tool for tool in servers["web"]["tools"] if tool["name"] == "add")
    assert add["description"] == "Add two integers." and add["calls"] == 0 and add["latency_ms"] is None
    assert HEADER_SECRET not in response.text


def test_the_servers_api_needs_the_key(mcp_host: tuple[str, Path]) -> None:
    url, _ = mcp_host
    assert httpx.get(f"{url}/mcp/servers", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert httpx.post(f"{url}/mcp/servers/web/refresh", headers=wrong, timeout=10).status_code == 401


def test_the_host_mcp_endpoint_refuses_requests_without_the_key(mcp_host: tuple[str, Path]) -> None:
    url, _ = mcp_host
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    for extra in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(f"{url}/mcp", json=initialize, headers={**headers, **extra}, timeout=10)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "unauthorized"


async def test_official_client_lists_the_host_tools_and_reads_sessions(
    mcp_host: tuple[str, Path], database_url: str
) -> None:
    url, _ = mcp_host
    title = f"mcp session {uuid.uuid4().hex[:8]}"
    session = httpx.post(f"{url}/sessions", json={"title": title}, headers=auth(), timeout=10).json()
    with psycopg.connect(database_url) as conn:
        for number in range(3):
            conn.execute(
                "INSERT INTO agent_messages (session_id, role, content, tokens) VALUES (%s, 'user', %s, 1)",
                (session["id"], f"message {number}"),
            )
    async with host_mcp_client(url) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == {"search_documents", "list_collections", "list_sessions", "get_session_messages"}
        listed = await client.call_tool("list_sessions", {"limit": 50})
        assert not listed.is_error and title in text(listed)
        latest = await client.call_tool("get_session_messages", {"session_id": session["id"], "limit": 2})
        assert not latest.is_error
        contents = [message["content"] for message in latest.structured_content["result"]]
        assert contents == ["message 1", "message 2"]
        missing = await client.call_tool("get_session_messages", {"session_id": str(uuid.uuid4())})
        assert missing.is_error and "does not exist" in text(missing)


async def test_official_client_searches_the_documents(mcp_host: tuple[str, Path]) -> None:
    url, _ = mcp_host
    name = f"mcp-{uuid.uuid4().hex[:8]}"
    created = httpx.post(f"{url}/rag/collections", json={"name": name}, headers=auth(), timeout=30)
    assert created.status_code == 201, created.text
    document = "The lighthouse keeper on Skerry Island feeds the cormorants sardines every Tuesday."
    upload = httpx.post(
        f"{url}/rag/collections/{name}/documents",
        params={"wait": "true"},
        files=[("files", ("keeper.txt", document.encode(), "text/plain"))],
        headers=auth(),
        timeout=300,
    )
    assert upload.status_code < 300, upload.text
    async with host_mcp_client(url) as client:
        collections = await client.call_tool("list_collections", {})
        assert not collections.is_error and name in text(collections)
        found = await client.call_tool(
            "search_documents", {"query": "who feeds the cormorants", "collections": [name], "top_k": 3}
        )
        assert not found.is_error, text(found)
        assert "Skerry Island" in text(found)
        unknown = await client.call_tool("search_documents", {"query": "x", "collections": ["no-such-collection"]})
        assert unknown.is_error and "no-such-collection" in text(unknown)


def test_servers_are_added_and_removed_at_run_time(
    mcp_host: tuple[str, Path],
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    url, path = mcp_host
    operators_file = path.read_bytes()
    added = post_server(url, {"name": "extra", "config": {"url": mcp_http_server[1]}})
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "up" and added.json()["source"] == "runtime"
    assert "extra__echo" in {tool["qualified_name"] for tool in added.json()["tools"]}
    assert saved_servers(database_url)["extra"] == {"url": mcp_http_server[1]}
    assert post_server(url, {"name": "extra", "config": {"url": mcp_http_server[1]}}).status_code == 409
    removed = httpx.delete(f"{url}/mcp/servers/extra", headers=admin_auth(), timeout=30)
    assert removed.status_code == 204
    assert "extra" not in saved_servers(database_url)
    assert httpx.get(f"{url}/mcp/servers/extra", headers=auth(), timeout=10).status_code == 404
    assert path.read_bytes() == operators_file
    assert not path.with_name("mcp_servers.runtime.json").exists(), "no run-time file is written"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"name": "both", "config": {"command": "python", "url": "http://127.0.0.1:1/mcp"}}, "either"),
        ({"name": "none", "config": {}}, "either"),
        ({"name": "bad name!", "config": {"command": "python"}}, "name"),
        ({"name": "typo", "config": {"comand": "python"}}, "comand"),
    ],
)
def test_an_invalid_server_is_refused_with_422(
    mcp_host: tuple[str, Path], database_url: str, body: dict[str, Any], named: str
) -> None:
    url, _ = mcp_host
    response = post_server(url, body)
    assert response.status_code == 422
    assert named in response.json()["error"]["message"]
    assert body["name"] not in saved_servers(database_url)


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("DELETE", ""), ("POST", "/refresh")])
def test_unknown_servers_are_404(mcp_host: tuple[str, Path], method: str, suffix: str) -> None:
    url, _ = mcp_host
    response = httpx.request(method, f"{url}/mcp/servers/nowhere{suffix}", headers=admin_auth(), timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "mcp_server_not_found"


def test_a_server_that_was_down_is_up_after_it_starts(mcp_host: tuple[str, Path]) -> None:
    url, _ = mcp_host
    port = free_port()
    added = post_server(url, {"name": "late", "config": {"url": f"http://127.0.0.1:{port}/mcp"}})
    assert added.status_code == 201
    assert added.json()["status"] == "down" and "ConnectError" in added.json()["error"]
    server, _ = start_mcp_http_server("late", port=port)
    try:
        refreshed = httpx.post(f"{url}/mcp/servers/late/refresh", headers=auth(), timeout=60)
        assert refreshed.status_code == 200
        assert refreshed.json()["status"] == "up" and refreshed.json()["error"] is None
        assert "late__add" in {tool["qualified_name"] for tool in refreshed.json()["tools"]}
    finally:
        server.stop()
        httpx.delete(f"{url}/mcp/servers/late", headers=admin_auth(), timeout=30)
