"""Who may change the host's MCP servers and where they may point: a real host process, real MCP servers."""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from host_support import auth, start_host
from mcp_support import (
    ADMIN_KEY,
    admin_auth,
    http_entry,
    mcp_host_env,
    mcp_http_server,  # noqa: F401  # a fixture
    saved_servers,
    wait_for_server,
    write_servers_file,
)

from agent_host.config import SERVICE_DIR
from procs import ManagedProcess, PostgresInstance

NO_PROXY = "http://127.0.0.1:9"  # these tests never chat
TRACKED_SERVERS_FILE = SERVICE_DIR / "mcp_servers.json"
ARG_SECRET = "tok-9f8e7d6c5b4a"
ENV_SECRET = "env-secret-value-42"
HEADER_SECRET = "sk-header-secret-777"


@pytest.fixture(scope="module")
def database_url(postgres: PostgresInstance) -> str:
    """The module's own genailabs database: the servers added here are no other test host's."""
    return postgres.new_database("mcp_security")


@pytest.fixture(scope="module")
def secured_host(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(host URL, its operator's servers file): an admin key, 127.0.0.1 allowed, a stdio server with secrets."""
    tmp = tmp_path_factory.mktemp("mcp-security")
    operator = {
        # `true` exits at once: the server is down, which is all the masking test needs.
        "tools": {
            "command": "true",
            "args": ["--token", ARG_SECRET, f"--api-key={ARG_SECRET}", "--name", "visible-name"],
            "env": {"TOOLS_TOKEN": ENV_SECRET},
        }
    }
    path = write_servers_file(tmp / "mcp.json", operator)
    env = {**mcp_host_env(tmp, path), "AGENT_HOST_ADMIN_KEY": ADMIN_KEY, "MCP_ALLOWED_HOSTS": "127.0.0.1"}
    process, url = start_host(NO_PROXY, database_url, "unused-proxy-key", **env)
    yield url, path
    process.stop()


@pytest.fixture(scope="module")
def host_without_admin(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("mcp-no-admin")
    path = write_servers_file(tmp / "mcp.json", {})
    process, url = start_host(NO_PROXY, database_url, "unused-proxy-key", **mcp_host_env(tmp, path))
    yield url
    process.stop()


def post_server(url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{url}/mcp/servers", json=body, headers=headers, timeout=60)


def error(response: httpx.Response) -> tuple[str, str]:
    body = response.json()["error"]
    return body["type"], body["message"]


@pytest.mark.parametrize("headers", [admin_auth(), auth()], ids=["admin", "api-key"])
def test_a_stdio_server_is_refused_and_its_command_never_runs(
    secured_host: tuple[str, Path], database_url: str, tmp_path: Path, headers: dict[str, str]
) -> None:
    url, path = secured_host
    marker = tmp_path / "ran"
    body = {"name": "p", "config": {"command": "sh", "args": ["-c", f"touch {marker}; id >&2; exit 1"]}}
    response = post_server(url, body, headers)
    assert response.status_code == 403
    kind, message = error(response)
    if headers == admin_auth():
        assert kind == "mcp_stdio_refused"
        assert "MCP_SERVERS_FILE" in message and str(path) in message
    assert "uid=" not in response.text
    time.sleep(1.0)  # a command started in the background would have touched the marker by now
    assert not marker.exists()
    assert httpx.get(f"{url}/mcp/servers/p", headers=auth(), timeout=10).status_code == 404
    assert "p" not in saved_servers(database_url)


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}/mcp",  # a name resolving to loopback
        "http://[::1]:{port}/mcp",
        "http://[::ffff:127.0.0.1]:{port}/mcp",
        "http://0.0.0.0:{port}/mcp",
        "http://10.1.2.3/mcp",
        "http://192.168.0.10/mcp",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest",
        "http://100.100.100.200/mcp",
        "http://metadata.google.internal/computeMetadata/v1",
    ],
)
def test_private_loopback_and_metadata_urls_are_refused(
    secured_host: tuple[str, Path],
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
    target: str,
) -> None:
    url, _ = secured_host
    port = mcp_http_server[1].split(":")[2].split("/")[0]
    response = post_server(url, {"name": "inside", "config": {"url": target.format(port=port)}}, admin_auth())
    assert response.status_code == 403, response.text
    kind, message = error(response)
    assert kind == "mcp_url_refused" and "MCP_ALLOWED_HOSTS" in message
    assert "inside" not in saved_servers(database_url)


def test_changes_need_the_admin_key_which_also_works_as_an_api_key(
    secured_host: tuple[str, Path],
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    url, _ = secured_host
    response = post_server(url, {"name": "web", "config": http_entry(mcp_http_server[1])}, auth())
    assert response.status_code == 403
    kind, message = error(response)
    assert kind == "forbidden" and "AGENT_HOST_ADMIN_KEY" in message
    assert httpx.delete(f"{url}/mcp/servers/tools", headers=auth(), timeout=10).status_code == 403
    assert httpx.get(f"{url}/mcp/servers", headers=admin_auth(), timeout=10).status_code == 200
    assert saved_servers(database_url) == {}


def test_without_an_admin_key_configured_nobody_changes_servers(
    host_without_admin: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    response = post_server(host_without_admin, {"name": "web", "config": http_entry(mcp_http_server[1])}, auth())
    assert response.status_code == 403
    assert "set AGENT_HOST_ADMIN_KEY" in error(response)[1]
    assert httpx.delete(f"{host_without_admin}/mcp/servers/web", headers=auth(), timeout=10).status_code == 403
    # A key nobody configured is no key at all.
    assert httpx.get(f"{host_without_admin}/mcp/servers", headers=admin_auth(), timeout=10).status_code == 401


def test_an_added_server_lives_in_the_database_never_in_a_tracked_file(
    secured_host: tuple[str, Path],
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    url, path = secured_host
    tracked, operators = TRACKED_SERVERS_FILE.read_bytes(), path.read_bytes()
    added = post_server(url, {"name": "web", "config": http_entry(mcp_http_server[1])}, admin_auth())
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "up" and added.json()["source"] == "runtime"
    assert saved_servers(database_url)["web"] == {"url": mcp_http_server[1]}
    removed = httpx.delete(f"{url}/mcp/servers/web", headers=admin_auth(), timeout=30)
    assert removed.status_code == 204
    assert "web" not in saved_servers(database_url)
    assert TRACKED_SERVERS_FILE.read_bytes() == tracked and path.read_bytes() == operators
    assert not path.with_name("mcp_servers.runtime.json").exists()


def test_a_server_from_the_operators_file_is_not_removed_through_the_api(secured_host: tuple[str, Path]) -> None:
    url, path = secured_host
    before = path.read_bytes()
    response = httpx.delete(f"{url}/mcp/servers/tools", headers=admin_auth(), timeout=10)
    assert response.status_code == 403
    kind, message = error(response)
    assert kind == "mcp_server_in_file" and str(path) in message
    assert path.read_bytes() == before
    assert httpx.get(f"{url}/mcp/servers/tools", headers=auth(), timeout=10).json()["source"] == "file"


def test_secret_arguments_env_and_header_values_are_masked(
    secured_host: tuple[str, Path],
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    url, _ = secured_host
    config = {
        "url": f"{mcp_http_server[1]}?token={ARG_SECRET}",
        "headers": {"Authorization": f"Bearer {HEADER_SECRET}"},
    }
    added = post_server(url, {"name": "masked", "config": config}, admin_auth())
    assert added.status_code == 201, added.text
    try:
        listing = httpx.get(f"{url}/mcp/servers", headers=auth(), timeout=10)
        for secret in (ARG_SECRET, ENV_SECRET, HEADER_SECRET):
            assert secret not in listing.text
        servers = {server["name"]: server for server in listing.json()}
        tools = servers["tools"]
        assert tools["target"] == "true --token *** --api-key=*** --name visible-name"
        assert tools["env"] == {"TOOLS_TOKEN": "***"}
        assert servers["masked"]["headers"] == {"Authorization": "***"}
        assert servers["masked"]["target"].endswith("/mcp?token=***")
    finally:
        httpx.delete(f"{url}/mcp/servers/masked", headers=admin_auth(), timeout=30)


class Redirector(BaseHTTPRequestHandler):
    """Answers everything with a 307 to another origin (set on the server as `location`)."""

    def do_POST(self) -> None:  # http.server's naming
        self.send_response(307)
        self.send_header("Location", self.server.location)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.server.hits += 1  # type: ignore[attr-defined]

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def redirector(mcp_http_server: tuple[ManagedProcess, str]) -> Iterator[tuple[str, ThreadingHTTPServer]]:  # noqa: F811
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    server.location = mcp_http_server[1]  # type: ignore[attr-defined]  # same host, another port: another origin
    server.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mcp", server
    server.shutdown()
    server.server_close()


def test_a_redirect_to_another_origin_is_not_followed(
    secured_host: tuple[str, Path], redirector: tuple[str, ThreadingHTTPServer]
) -> None:
    url, _ = secured_host
    added = post_server(url, {"name": "moved", "config": {"url": redirector[0]}}, admin_auth())
    try:
        assert added.status_code == 201, added.text
        state = added.json() if added.json()["status"] != "connecting" else wait_for_server(url, "moved", "down")
        assert state["status"] == "down"
        assert "not followed" in state["error"] and state["tools"] == []
        assert redirector[1].hits >= 1  # type: ignore[attr-defined]
    finally:
        httpx.delete(f"{url}/mcp/servers/moved", headers=admin_auth(), timeout=30)
