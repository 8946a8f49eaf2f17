"""MCP servers the host is a client of: list with status and per-tool stats, add, remove, refresh.

Adding and removing are an administrator's, and only for streamable HTTP servers, which are saved in the
database for every replica; stdio servers and the operator's file are configured on the host itself. Each
replica reads the saved list before it answers, so all of them list the same servers; status, tool stats and
refresh are the answering replica's own connection's.
"""

from typing import Any

from fastapi import APIRouter, Response

from agent_host.deps import AdminDep, McpManagerDep
from agent_host.mcp.manager import public
from agent_host.mcp.schemas import McpServerCreate, McpServerPublic

router = APIRouter(prefix="/mcp/servers", tags=["mcp"])
ADD_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "not the administrator's key (AGENT_HOST_ADMIN_KEY), a stdio server (configured only in the"
        " operator's servers file), or a URL reaching a loopback, private, link-local or metadata address whose"
        " host is not in MCP_ALLOWED_HOSTS"
    },
    409: {"description": "a server of that name is configured already"},
    503: {"description": "the database holding the server list is unreachable"},
    422: {"description": "an invalid server config, or a host that does not resolve"},
}
REMOVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "not the administrator's key, or a server from the operator's servers file"},
    404: {"description": "no such server"},
    503: {"description": "the database holding the server list is unreachable"},
}


@router.get("")
async def list_servers(manager: McpManagerDep) -> list[McpServerPublic]:
    await manager.catch_up()
    return [public(server) for server in manager.servers()]


@router.post("", status_code=201, responses=ADD_RESPONSES)
async def add_server(body: McpServerCreate, manager: McpManagerDep, _admin: AdminDep) -> McpServerPublic:
    """Saves an HTTP server for every replica and connects it (answering once this replica's first attempt has
    ended); 409 when the name is taken, by another replica's add at the same moment too."""
    return public(await manager.add(body.name, body.config))


@router.get("/{name}")
async def get_server(name: str, manager: McpManagerDep) -> McpServerPublic:
    await manager.catch_up()
    return public(manager.server(name))


@router.delete("/{name}", status_code=204, responses=REMOVE_RESPONSES)
async def remove_server(name: str, manager: McpManagerDep, _admin: AdminDep) -> Response:
    """Removes a server added at run time; one from the operator's servers file is refused (403)."""
    await manager.remove(name)
    return Response(status_code=204)


@router.post("/{name}/refresh")
async def refresh_server(name: str, manager: McpManagerDep) -> McpServerPublic:
    """Reconnects this replica's connection and rediscovers the server's tools."""
    await manager.catch_up()
    return public(await manager.refresh(name))
