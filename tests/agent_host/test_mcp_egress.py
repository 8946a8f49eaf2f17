"""The egress policy, secret masking and remote error text, with the host's own MCP manager in-process."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from mcp_support import (
    http_entry,
    mcp_http_server,  # noqa: F401  # a fixture
    mcp_settings,
    saved_servers,
    write_servers_file,
)
from psycopg.types.json import Jsonb

from agent_host.errors import DatabaseUnavailable, McpStdioRefused, McpUrlRefused
from agent_host.mcp.config import McpServerConfig
from agent_host.mcp.egress import EgressPolicy, parse_hosts
from agent_host.mcp.manager import open_mcp, public
from agent_host.mcp.redaction import MASK, mask_args, mask_url
from agent_host.mcp.tools import MAX_ERROR_CHARS
from genailabs_accounts.migrations import migrate
from procs import ManagedProcess, PostgresInstance


async def test_loopback_is_refused_unless_its_host_is_allowed() -> None:
    with pytest.raises(McpUrlRefused, match="MCP_ALLOWED_HOSTS"):
        await EgressPolicy(frozenset()).check("http://127.0.0.1:8000/mcp")
    await EgressPolicy(parse_hosts(" 127.0.0.1 , Example.internal")).check("http://127.0.0.1:8000/mcp")
    # Allowing an address does not allow names that resolve to it.
    with pytest.raises(McpUrlRefused, match="localhost"):
        await EgressPolicy(parse_hosts("127.0.0.1")).check("http://localhost:8000/mcp")


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "240.0.0.1", "[fe80::1]",
     "[fc00::1]", "[::]", "[::ffff:10.0.0.1]", "[fd00:ec2::254]"],
)  # fmt: skip
async def test_every_non_public_address_is_refused(address: str) -> None:
    with pytest.raises(McpUrlRefused, match="MCP_ALLOWED_HOSTS"):
        await EgressPolicy(frozenset()).check(f"http://{address}/mcp")


async def test_a_public_address_passes() -> None:
    await EgressPolicy(frozenset()).check("https://1.1.1.1/mcp")


@pytest.fixture
def database_url(postgres: PostgresInstance) -> str:
    """A test's own genailabs database: the servers saved there are no other test's."""
    return postgres.new_database("mcp_egress")


def save_directly(database_url: str, name: str, config: dict[str, Any]) -> None:
    """A row as a replica's add leaves it (the schema migrated first, as a host does)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrate(conn)
        conn.execute("INSERT INTO mcp_servers (name, config) VALUES (%s, %s)", (name, Jsonb(config)))


async def test_the_manager_refuses_stdio_and_checks_the_url_before_saving_anything(
    tmp_path: Path, database_url: str
) -> None:
    settings = mcp_settings(write_servers_file(tmp_path / "mcp.json", {}), database_url)
    async with open_mcp(settings) as manager:
        with pytest.raises(McpStdioRefused, match="MCP_SERVERS_FILE"):
            await manager.add("p", McpServerConfig(command="sh", args=["-c", f"touch {tmp_path / 'ran'}"]))
        with pytest.raises(McpUrlRefused):
            await manager.add("web", McpServerConfig(url="http://127.0.0.1:1/mcp"))
        assert manager.servers() == []
    assert not (tmp_path / "ran").exists()
    assert saved_servers(database_url) == {}
    assert not settings.mcp_runtime_servers_file.exists()


async def test_a_saved_server_is_checked_again_when_it_connects(
    tmp_path: Path,
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    """A server saved while its host was allowed (or resolved elsewhere) is refused at connect time now."""
    servers = write_servers_file(tmp_path / "mcp.json", {})
    save_directly(database_url, "web", http_entry(mcp_http_server[1]))
    async with open_mcp(mcp_settings(servers, database_url)) as manager:
        await manager.wait_ready(timeout=30)
        state = public(manager.server("web"))
        assert state.status == "down" and state.source == "runtime"
        assert state.error is not None and "MCP_ALLOWED_HOSTS" in state.error
    allowed = mcp_settings(servers, database_url, mcp_allowed_hosts="127.0.0.1")
    async with open_mcp(allowed) as manager:
        await manager.wait_ready(timeout=30)
        assert public(manager.server("web")).status == "up"


async def test_a_legacy_run_time_file_is_imported_once_and_never_written(
    tmp_path: Path,
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    """An upgraded host keeps the servers its old run-time file held; one removed later stays removed."""
    servers = write_servers_file(tmp_path / "mcp.json", {"mine": http_entry(mcp_http_server[1])})
    settings = mcp_settings(servers, database_url, mcp_allowed_hosts="127.0.0.1")
    marker = tmp_path / "ran"
    legacy = {
        "web": http_entry(mcp_http_server[1]),
        "p": {"command": "touch", "args": [str(marker)]},  # never run: stdio only from the operator's file
        "mine": http_entry("http://127.0.0.1:1/mcp"),  # the operator's file has this name: skipped
    }
    write_servers_file(settings.mcp_runtime_servers_file, legacy)
    before = settings.mcp_runtime_servers_file.read_bytes()
    async with open_mcp(settings) as manager:
        await manager.wait_ready(timeout=30)
        assert {server.name: server.source for server in manager.servers()} == {"mine": "file", "web": "runtime"}
        assert saved_servers(database_url) == {"web": http_entry(mcp_http_server[1])}
        await manager.remove("web")
    async with open_mcp(settings) as manager:
        assert [server.name for server in manager.servers()] == ["mine"]
    assert saved_servers(database_url) == {}
    assert settings.mcp_runtime_servers_file.read_bytes() == before
    assert not marker.exists()


async def test_a_broken_run_time_file_is_ignored_and_kept(tmp_path: Path, database_url: str) -> None:
    settings = mcp_settings(write_servers_file(tmp_path / "mcp.json", {}), database_url)
    settings.mcp_runtime_servers_file.write_text("{half a file")
    async with open_mcp(settings) as manager:
        assert manager.servers() == []
    assert settings.mcp_runtime_servers_file.read_text() == "{half a file"
    assert saved_servers(database_url) == {}


async def test_without_its_database_the_manager_runs_the_operators_servers(
    tmp_path: Path,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    settings = mcp_settings(write_servers_file(tmp_path / "mcp.json", {"web": http_entry(mcp_http_server[1])}))
    async with open_mcp(settings) as manager:
        await manager.wait_ready(timeout=30)
        assert public(manager.server("web")).status == "up"
        assert (await manager.call("web__add", {"a": 1, "b": 2})).text == "3"
        with pytest.raises(DatabaseUnavailable):
            await manager.add("other", McpServerConfig(url="https://1.1.1.1/mcp"))


class LongErrors(BaseHTTPRequestHandler):
    """A JSON-RPC endpoint that answers every request with an error of 20,000 characters."""

    def do_POST(self) -> None:  # http.server's naming
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request.get("id"), "error": {"code": -32603, "message": "x" * 20000}}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def long_errors() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), LongErrors)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mcp"
    server.shutdown()
    server.server_close()


async def test_a_remote_servers_error_text_is_cut_short(tmp_path: Path, long_errors: str) -> None:
    settings = mcp_settings(write_servers_file(tmp_path / "mcp.json", {"loud": http_entry(long_errors)}))
    async with open_mcp(settings) as manager:
        await manager.wait_ready(timeout=30)
        state = public(manager.server("loud"))
    assert state.status == "down" and state.error is not None
    assert "xxxx" in state.error and len(state.error) <= MAX_ERROR_CHARS


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--token", "abc"], ["--token", MASK]),
        (["--api-key=abc", "--password", "hunter2"], ["--api-key=***", "--password", MASK]),
        (["--client-secret=abc"], ["--client-secret=***"]),
        (["sk-1234567890abcdef"], [MASK]),
        (["ghp_abcdefABCDEF1234567890"], [MASK]),
        (["API_TOKEN=abc"], ["API_TOKEN=***"]),
        (["q8Zr2LxV0pT7mN4bK9sW1yH6"], [MASK]),  # long and high-entropy
        (["-m", "agent_host.mcp.examples.files_server", "--root", "/tmp/some/dir/notes_2024"],
         ["-m", "agent_host.mcp.examples.files_server", "--root", "/tmp/some/dir/notes_2024"]),
        (["--verbose", "--port", "8080"], ["--verbose", "--port", "8080"]),
        (["http://user:pw@h/mcp?api_key=abc&x=1"], ["http://user:***@h/mcp?api_key=***&x=1"]),
    ],
)  # fmt: skip
def test_secret_looking_arguments_are_masked_and_the_rest_kept(args: list[str], shown: list[str]) -> None:
    assert mask_args(args) == shown


def test_urls_keep_everything_but_their_secrets() -> None:
    assert mask_url("https://mcp.example.com:8443/mcp") == "https://mcp.example.com:8443/mcp"
    assert (
        mask_url("https://mcp.example.com/mcp?token=abc&team=blue") == "https://mcp.example.com/mcp?token=***&team=blue"
    )
