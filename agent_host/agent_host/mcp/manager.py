"""The host's MCP client: every configured server connected at start, namespaced tools, calls that never raise.

Servers come from two files of the same format: the operator's (MCP_SERVERS_FILE, tracked, only ever read),
which may hold stdio servers, and the run-time one under .stack/ (MCP_RUNTIME_SERVERS_FILE), which holds the
streamable HTTP servers an administrator added through the API, and only those.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from agent_host.config import Settings
from agent_host.errors import McpConfigInvalid, McpServerExists, McpServerInFile, McpServerNotFound, McpStdioRefused
from agent_host.mcp.config import McpServerConfig, load_servers, save_server
from agent_host.mcp.connection import Limits, ServerConnection
from agent_host.mcp.egress import EgressPolicy, parse_hosts
from agent_host.mcp.redaction import mask_values
from agent_host.mcp.schemas import LatencyStats, McpServerPublic, McpToolPublic
from agent_host.mcp.tools import McpTool, ToolOutcome

log = logging.getLogger(__name__)

__all__ = ["McpManager", "McpTool", "ToolOutcome", "open_mcp"]


class McpManager:
    """Connections to the configured servers; run-time additions and removals go to the run-time file."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.mcp_servers_file
        self.runtime_path = settings.mcp_runtime_servers_file
        self.egress = EgressPolicy(
            parse_hosts(settings.mcp_allowed_hosts), resolve_timeout=settings.mcp_connect_timeout
        )
        self.limits = Limits(
            connect_timeout=settings.mcp_connect_timeout,
            call_timeout=settings.mcp_call_timeout,
            retry_interval=settings.mcp_retry_interval,
            result_max_chars=settings.tool_result_max_chars,
        )
        self._servers: dict[str, ServerConnection] = {}
        self._changes = asyncio.Lock()

    def tools(self) -> list[McpTool]:
        """Tools of the servers that are up, named `<server>__<tool>`."""
        return [tool for server in self._servers.values() if server.status == "up" for tool in server.tools.values()]

    async def call(self, qualified_name: str, arguments: dict[str, Any], timeout: float | None = None) -> ToolOutcome:
        """Calls a tool by qualified name; failures (unknown tool, bad arguments, down, timeout) are error results."""
        for server in self._servers.values():
            tool = server.tools.get(qualified_name)
            if tool is not None:
                if not isinstance(arguments, dict):
                    return ToolOutcome(f"arguments for {qualified_name} must be a JSON object", True, 0.0)
                return await server.call(tool, arguments, timeout)
        available = ", ".join(sorted(tool.qualified_name for tool in self.tools())[:20]) or "none"
        return ToolOutcome(f"unknown MCP tool {qualified_name!r}; available: {available}", True, 0.0)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Waits until every server's first connection attempt has ended, up or down."""
        waits = [asyncio.create_task(server.settled.wait()) for server in self._servers.values()]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for task in pending:
            task.cancel()

    def start(self, name: str, config: McpServerConfig, from_file: bool) -> ServerConnection:
        # Only the operator's servers are trusted to live on loopback or a private network.
        if from_file:
            server = ServerConnection(name, config, self.limits, "file")
        else:
            server = ServerConnection(name, config, self.limits, "runtime", self.egress)
        self._servers[name] = server
        server.start()
        return server

    def server(self, name: str) -> ServerConnection:
        try:
            return self._servers[name]
        except KeyError:
            raise McpServerNotFound(name) from None

    def servers(self) -> list[ServerConnection]:
        return list(self._servers.values())

    async def add(self, name: str, config: McpServerConfig) -> ServerConnection:
        """Connects a new HTTP server (waiting for its first attempt) and saves it to the run-time file."""
        if config.url is None:
            raise McpStdioRefused(
                "stdio MCP servers run a command on the host, so the API does not take them: the operator "
                f"configures them in the servers file ({self.path}, MCP_SERVERS_FILE). Add servers here by url."
            )
        await self.egress.check(config.url)
        async with self._changes:
            if name in self._servers:
                raise McpServerExists(name)
            await asyncio.to_thread(save_server, self.runtime_path, name, config)
            server = self.start(name, config, from_file=False)
        await asyncio.wait([asyncio.create_task(server.settled.wait())], timeout=self.limits.connect_timeout + 5)
        return server

    async def remove(self, name: str) -> None:
        """Disconnects a server added at run time and deletes it from the run-time file."""
        async with self._changes:
            server = self.server(name)
            if server.source == "file":
                raise McpServerInFile(
                    f"MCP server {name!r} is configured in the operator's servers file ({self.path}): remove it "
                    "there and restart the host; the API only removes servers it added"
                )
            await asyncio.to_thread(save_server, self.runtime_path, name, None)
            del self._servers[name]
        await server.stop()

    async def refresh(self, name: str) -> ServerConnection:
        """Reconnects and rediscovers the server's tools, returning once the attempt has ended."""
        server = self.server(name)
        await server.refresh(timeout=self.limits.connect_timeout + 5)
        return server

    async def close(self) -> None:
        servers, self._servers = list(self._servers.values()), {}
        await asyncio.gather(*(server.stop() for server in servers))


def public(server: ServerConnection) -> McpServerPublic:
    """The server as `/mcp/servers` shows it: status, error, and each tool with its call counts and latency."""
    tools = []
    for tool in server.tools.values():
        stats = server.stats.get(tool.name)
        latency = stats.latency() if stats else None
        tools.append(
            McpToolPublic(
                name=tool.name,
                qualified_name=tool.qualified_name,
                description=tool.description,
                input_schema=tool.input_schema,
                calls=stats.calls if stats else 0,
                errors=stats.errors if stats else 0,
                last_error=stats.last_error if stats else None,
                latency_ms=LatencyStats(**latency) if latency else None,
            )
        )
    return McpServerPublic(
        name=server.name,
        transport=server.config.transport,
        source=server.source,
        target=server.config.describe(),
        env=mask_values(server.config.env),
        headers=mask_values(server.config.headers),
        status=server.status,
        error=server.error,
        connected_at=server.connected_at,
        tools=tools,
    )


@asynccontextmanager
async def open_mcp(settings: Settings) -> AsyncIterator[McpManager]:
    """Starts connecting to every configured server without waiting: a slow or dead one never holds up the host."""
    configs = load_servers(settings.mcp_servers_file)
    added = load_runtime_servers(settings.mcp_runtime_servers_file, set(configs))
    # The HTTP transport's client logs every request at INFO: a heartbeat line per server every few seconds.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    manager = McpManager(settings)
    for name, config in configs.items():
        manager.start(name, config, from_file=True)
    for name, config in added.items():
        manager.start(name, config, from_file=False)
    log.info(
        "MCP: connecting to %d servers from %s and %d added at run time (%s)",
        len(configs),
        settings.mcp_servers_file,
        len(added),
        settings.mcp_runtime_servers_file,
    )
    try:
        yield manager
    finally:
        await manager.close()


def load_runtime_servers(path: Path, taken: set[str]) -> dict[str, McpServerConfig]:
    """The servers added through the API; a stdio entry or a name the operator's file uses is skipped."""
    try:
        saved = load_servers(path)
    except McpConfigInvalid as exc:
        # Run-time state must not keep the host from starting; the file stays as it is for the operator to fix.
        log.error("MCP: ignoring the servers added at run time: %s", exc.message)
        return {}
    servers = {}
    for name, config in saved.items():
        if config.url is None:
            log.warning("MCP: skipping %s in %s: stdio servers belong in the operator's servers file", name, path)
        elif name in taken:
            log.warning("MCP: skipping %s in %s: the operator's servers file configures it", name, path)
        else:
            servers[name] = config
    return servers
