"""MCP servers the host is a client of: list with status and per-tool stats, add, remove, refresh.

Adding and removing are an administrator's (AGENT_HOST_ADMIN_KEY), and only for streamable HTTP servers
that live in the run-time file; stdio servers and the operator's file are configured on the host itself.
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
    422: {"description": "an invalid server config, or a host that does not resolve"},
}
REMOVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "not the administrator's key, or a server from the operator's servers file"},
    404: {"description": "no such server"},
}


@router.get("")
async def list_servers(manager: McpManagerDep) -> list[McpServerPublic]:
    return [public(server) for server in manager.servers()]


@router.post("", status_code=201, responses=ADD_RESPONSES)
async def add_server(body: McpServerCreate, manager: McpManagerDep, _admin: AdminDep) -> McpServerPublic:
    """Connects an HTTP server (answering once its first attempt has ended) and saves it to the run-time file."""
    return public(await manager.add(body.name, body.config))


@router.get("/{name}")
async def get_server(name: str, manager: McpManagerDep) -> McpServerPublic:
    return public(manager.server(name))


@router.delete("/{name}", status_code=204, responses=REMOVE_RESPONSES)
async def remove_server(name: str, manager: McpManagerDep, _admin: AdminDep) -> Response:
    """Removes a server added at run time; one from the operator's servers file is refused (403)."""
    await manager.remove(name)
    return Response(status_code=204)


@router.post("/{name}/refresh")
async def refresh_server(name: str, manager: McpManagerDep) -> McpServerPublic:
    """Reconnects and rediscovers the server's tools."""
    return public(await manager.refresh(name))
