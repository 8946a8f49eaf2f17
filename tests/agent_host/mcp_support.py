"""Helpers for MCP tests: the test HTTP MCP server as a real process, servers files, an agent host wired to them.

server, url = start_mcp_http_server()                  # tests/agent_host/mcp_http_server.py on a free port
path = write_servers_file(tmp / "mcp.json", {"files": files_server_entry(tmp / "notes"), "web": http_entry(url)})
host, host_url = start_host(proxy, database_url, proxy_key, **mcp_host_env(tmp, path))
wait_for_server(host_url, "web")                       # polls GET /mcp/servers/web until it is up
"""

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from host_support import HOST_KEY, auth
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent_host.config import Settings
from agent_host.mcp.egress import mcp_http_client
from devstack.probe import free_port, port_in_use
from procs import PYTHON, ManagedProcess, scaled

HTTP_SERVER = Path(__file__).with_name("mcp_http_server.py")
ADMIN_KEY = "sk-agent-host-admin-test-key"
# The database of an in-process manager that is given none: nothing listens there, so it runs only the servers
# of its file (the saved list is retried in the background, quietly failing).
NO_DATABASE = "postgresql://nobody:nobody@127.0.0.1:9/none"


def admin_auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def start_mcp_http_server(name: str = "web", port: int | None = None) -> tuple[ManagedProcess, str]:
    """The test MCP server (add, echo, sleep, big, fail) over streamable HTTP; returns it and its /mcp URL."""
    port = port or free_port()
    process = ManagedProcess(
        f"mcp-http:{port}",
        [PYTHON, str(HTTP_SERVER), "--port", str(port), "--name", name],
        health=lambda: None if port_in_use(port) else f"port {port} not open yet",
        startup_timeout=30.0,
    )
    process.start()
    return process, f"http://127.0.0.1:{port}/mcp"


def files_server_entry(root: Path) -> dict[str, Any]:
    """The example files server over stdio, confined to `root`."""
    return {"command": "python", "args": ["-m", "agent_host.mcp.examples.files_server", "--root", str(root)]}


def http_entry(url: str, **headers: str) -> dict[str, Any]:
    return {"url": url, "headers": headers} if headers else {"url": url}


def write_servers_file(path: Path, servers: dict[str, dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


def mcp_host_env(tmp: Path, servers_file: Path, retry_interval: float = 1.0) -> dict[str, str]:
    """Settings for a host process of one test module: its own servers file (and legacy run-time file, imported
    once if present) and Chroma, fast retries. Give each module's hosts their own database too
    (`postgres.new_database`): the servers added through the API are every host's of that database."""
    return {
        "MCP_SERVERS_FILE": str(servers_file),
        "MCP_RUNTIME_SERVERS_FILE": str(tmp / "mcp_servers.runtime.json"),
        "MCP_RETRY_INTERVAL": str(retry_interval),
        "MCP_CONNECT_TIMEOUT": "15",
        "CHROMA_PATH": str(tmp / "chroma"),
    }


def mcp_settings(servers_file: Path, database_url: str = NO_DATABASE, **overrides: Any) -> Settings:
    """Settings for an in-process McpManager (open_mcp) reading `servers_file`, saving servers in `database_url`."""
    values: dict[str, Any] = {
        "agent_host_api_key": HOST_KEY,
        "agent_host_proxy_key": "unused",
        "database_url": database_url,
        "db_timeout": 1.0,
        "mcp_servers_file": servers_file,
        "mcp_runtime_servers_file": servers_file.with_name("mcp_servers.runtime.json"),
        "mcp_retry_interval": 1.0,
        "mcp_connect_timeout": 15.0,
        **overrides,
    }
    return Settings(**values)


def saved_servers(database_url: str) -> dict[str, dict[str, Any]]:
    """The servers added through the API, as the database holds them (name → config)."""
    with psycopg.connect(database_url) as conn:
        try:
            rows = conn.execute("SELECT name, config FROM mcp_servers").fetchall()
        except psycopg.errors.UndefinedTable:  # no host has migrated this database yet
            return {}
    return {str(name): dict(config) for name, config in rows}


def server_state(host_url: str, name: str) -> dict[str, Any]:
    response = httpx.get(f"{host_url}/mcp/servers/{name}", headers=auth(), timeout=30)
    response.raise_for_status()
    return dict(response.json())


def wait_for_server(host_url: str, name: str, status: str = "up", timeout: float = 40.0) -> dict[str, Any]:
    """Polls the host until the server has `status`; returns its state (the last one seen on timeout)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        state = server_state(host_url, name)
        if state["status"] == status or time.monotonic() > deadline:
            return state
        time.sleep(0.3)


@asynccontextmanager
async def host_mcp_client(host_url: str, key: str = HOST_KEY) -> AsyncIterator[Client]:
    """The official MCP client on the host's own server at /mcp, with the bearer key."""
    async with (
        mcp_http_client({"Authorization": f"Bearer {key}"}, connect_timeout=10) as http,
        Client(streamable_http_client(f"{host_url}/mcp", http_client=http), read_timeout_seconds=60) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def mcp_http_server() -> Iterator[tuple[ManagedProcess, str]]:
    """One test HTTP MCP server for the module: (process, /mcp URL)."""
    process, url = start_mcp_http_server()
    yield process, url
    process.stop()
