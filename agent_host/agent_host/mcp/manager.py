"""The host's MCP client: every configured server connected, namespaced tools, calls that never raise.

Servers come from two places. The operator's servers file (MCP_SERVERS_FILE, tracked, only ever read) may hold
stdio servers: each replica reads the same file and runs its own child processes for them. The streamable HTTP
servers an administrator adds through the API live in PostgreSQL (`mcp_servers`), so every replica runs the
same list: each one reads the table before it lists or looks up servers, and once a second in the background,
and keeps its own client connections to what it finds. A name in the operator's file wins over a saved one.
A host upgraded from the per-process run-time file (MCP_RUNTIME_SERVERS_FILE) imports it once, then never
reads or writes it again.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from agent_host.config import Settings
from agent_host.errors import (
    DatabaseUnavailable,
    McpServerExists,
    McpServerInFile,
    McpServerNotFound,
    McpStdioRefused,
)
from agent_host.mcp.config import McpServerConfig, legacy_servers, load_servers
from agent_host.mcp.connection import Limits, ServerConnection
from agent_host.mcp.egress import EgressPolicy, parse_hosts
from agent_host.mcp.redaction import mask_values
from agent_host.mcp.schemas import LatencyStats, McpServerPublic, McpToolPublic
from agent_host.mcp.store import McpServerStore, open_store_pool
from agent_host.mcp.tools import McpTool, ToolOutcome

log = logging.getLogger(__name__)

__all__ = ["McpManager", "McpTool", "ToolOutcome", "open_mcp"]
# How often a replica reads the saved servers when nothing asks it to: a server added or removed through
# another replica shows here within about this long even if nobody lists the servers.
SYNC_INTERVAL = 1.0


class McpManager:
    """This replica's connections: the operator's servers, and the saved list kept in step with the database."""

    def __init__(self, settings: Settings, store: McpServerStore, sync_interval: float = SYNC_INTERVAL) -> None:
        self.path = settings.mcp_servers_file
        self.legacy_path = settings.mcp_runtime_servers_file
        self.store = store
        self.sync_interval = sync_interval
        self.db_timeout = settings.db_timeout
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
        # Orders this replica's reads of the table against its own adds and removes (the table orders replicas).
        self._sync = asyncio.Lock()
        self._reachable: bool | None = None  # whether the last read of the table worked (None: not tried yet)
        self._imported = False
        self._skipped: set[str] = set()  # saved servers this replica does not run, warned about once
        self._loop: asyncio.Task[None] | None = None

    def tools(self) -> list[McpTool]:
        """Tools of the servers that are up, named `<server>__<tool>`."""
        return [tool for server in self._servers.values() if server.status == "up" for tool in server.tools.values()]

    def _find(self, qualified_name: str) -> tuple[ServerConnection, McpTool] | None:
        for server in self._servers.values():
            tool = server.tools.get(qualified_name)
            if tool is not None:
                return server, tool
        return None

    async def call(self, qualified_name: str, arguments: dict[str, Any], timeout: float | None = None) -> ToolOutcome:
        """Calls a tool by qualified name; failures (unknown tool, bad arguments, down, timeout) are error results."""
        found = self._find(qualified_name)
        if found is None:  # perhaps a server another replica added a moment ago
            started = await self.catch_up()
            await _settle(started, self.limits.connect_timeout + 5)
            found = self._find(qualified_name)
        if found is not None:
            server, tool = found
            if not isinstance(arguments, dict):
                return ToolOutcome(f"arguments for {qualified_name} must be a JSON object", True, 0.0)
            return await server.call(tool, arguments, timeout)
        available = ", ".join(sorted(tool.qualified_name for tool in self.tools())[:20]) or "none"
        return ToolOutcome(f"unknown MCP tool {qualified_name!r}; available: {available}", True, 0.0)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Waits until every server's first connection attempt has ended, up or down."""
        await _settle(list(self._servers.values()), timeout)

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
        """Saves a new HTTP server for every replica and connects it here (waiting for its first attempt)."""
        if config.url is None:
            raise McpStdioRefused(
                "stdio MCP servers run a command on the host, so the API does not take them: the operator "
                f"configures them in the servers file ({self.path}, MCP_SERVERS_FILE). Add servers here by url."
            )
        await self.egress.check(config.url)
        existing = self._servers.get(name)
        if existing is not None and existing.source == "file":
            raise McpServerExists(name)
        if not await self.store.insert(name, config):  # taken: saved before, or by another replica just now
            raise McpServerExists(name)
        async with self._sync:
            server = self._servers.get(name)
            if server is None or server.source != "runtime" or server.config != config:
                stale = self._servers.pop(name, None)
                if stale is not None:
                    await stale.stop()
                server = self.start(name, config, from_file=False)
        await _settle([server], self.limits.connect_timeout + 5)
        return server

    async def remove(self, name: str) -> None:
        """Forgets a server added through the API, for every replica, and disconnects it here."""
        existing = self._servers.get(name)
        if existing is not None and existing.source == "file":
            raise McpServerInFile(
                f"MCP server {name!r} is configured in the operator's servers file ({self.path}): remove it "
                "there and restart the host; the API only removes servers it added"
            )
        deleted = await self.store.delete(name)
        async with self._sync:
            server = self._servers.get(name)
            if server is not None and server.source == "runtime":
                del self._servers[name]
                await server.stop()
        if not deleted:  # removed through another replica first, or never there
            raise McpServerNotFound(name)

    async def refresh(self, name: str) -> ServerConnection:
        """Reconnects this replica's connection and rediscovers the server's tools, once that attempt has ended."""
        server = self.server(name)
        await server.refresh(timeout=self.limits.connect_timeout + 5)
        return server

    async def catch_up(self) -> list[ServerConnection]:
        """Reads the saved servers now (before a listing or a lookup) unless the database was unreachable at the
        last look, when the background loop finds it again; the servers this started."""
        if self._reachable is False:
            return []
        try:
            return await self.sync()
        except DatabaseUnavailable:
            return []  # the loop says so in the log

    async def sync(self) -> list[ServerConnection]:
        """Makes this replica's connections match the saved list: starts new servers, stops removed or changed
        ones; the servers it started. Raises DatabaseUnavailable."""
        async with self._sync:
            try:
                if not self._imported:
                    await self._import_legacy_file()
                # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that arrives as the
                # read completes, and close() then waited for this loop forever.
                async with asyncio.timeout(self.db_timeout + 1):
                    saved, invalid = await self.store.load()
            except (DatabaseUnavailable, TimeoutError) as exc:
                if self._reachable is not False:
                    log.warning("MCP: cannot read the saved servers (%s); keeping the ones running", exc)
                self._reachable = False
                raise DatabaseUnavailable(self.store.unavailable) from exc
            if self._reachable is False:
                log.info("MCP: the saved servers are readable again")
            self._reachable = True
            return await self._apply(saved, invalid)

    async def _apply(self, saved: dict[str, McpServerConfig], invalid: dict[str, str]) -> list[ServerConnection]:
        gone = [
            server
            for name, server in self._servers.items()
            if server.source == "runtime" and saved.get(name) != server.config
        ]
        for server in gone:
            del self._servers[server.name]
            log.info("MCP: %s was removed or changed through another replica", server.name)
        await asyncio.gather(*(server.stop() for server in gone))
        started = []
        for name, config in saved.items():
            current = self._servers.get(name)
            if current is None:
                started.append(self.start(name, config, from_file=False))
            elif current.source == "file" and name not in self._skipped:
                self._skipped.add(name)
                log.warning("MCP: not running the saved server %s: the operator's servers file configures it", name)
        for name, reason in invalid.items():
            if name not in self._skipped:
                self._skipped.add(name)
                log.warning("MCP: not running the saved server %s: %s", name, reason)
        return started

    async def _import_legacy_file(self) -> None:
        """The run-time file of a host from before the table, saved into it once (whichever replica is first)."""
        path = self.legacy_path
        taken = {name for name, server in self._servers.items() if server.source == "file"}
        servers = legacy_servers(path, taken)
        if servers is not None:
            added = await self.store.import_once(str(path.resolve()), servers)
            if added is not None:
                log.info("MCP: imported %d servers from %s into the database; the file is not read again", added, path)
        self._imported = True

    def follow_saved_servers(self) -> None:
        """Starts the background loop that reads the saved servers every `sync_interval` seconds."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._keep_in_sync(), name="mcp:sync")

    async def _keep_in_sync(self) -> None:
        failure: str | None = None
        while True:
            try:
                await self.sync()
                failure = None
            except DatabaseUnavailable:
                pass  # sync logged it
            except Exception as exc:  # the loop must outlive anything one read runs into
                if repr(exc) != failure:
                    log.exception("MCP: reading the saved servers failed")
                failure = repr(exc)
            await asyncio.sleep(self.sync_interval)

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with suppress(asyncio.CancelledError):
                await self._loop
        servers, self._servers = list(self._servers.values()), {}
        await asyncio.gather(*(server.stop() for server in servers))


async def _settle(servers: list[ServerConnection], timeout: float | None) -> None:
    """Waits until each server's first connection attempt has ended, up or down (at most `timeout`)."""
    waits = [asyncio.create_task(server.settled.wait()) for server in servers]
    if not waits:
        return
    _, pending = await asyncio.wait(waits, timeout=timeout)
    for task in pending:
        task.cancel()


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
    """Starts connecting to every configured server without waiting: a slow or dead one never holds up the host,
    and neither does the database (the saved servers are read again every second until it answers)."""
    configs = load_servers(settings.mcp_servers_file)
    # The HTTP transport's client logs every request at INFO: a heartbeat line per server every few seconds.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    pool = await open_store_pool(settings.database_url.get_secret_value(), settings.db_timeout)
    manager = McpManager(settings, McpServerStore(pool))
    try:
        for name, config in configs.items():
            manager.start(name, config, from_file=True)
        await manager.catch_up()
        saved = sum(server.source == "runtime" for server in manager.servers())
        log.info(
            "MCP: connecting to %d servers from %s and %d saved in the database",
            len(configs),
            settings.mcp_servers_file,
            saved,
        )
        manager.follow_saved_servers()
        yield manager
    finally:
        await manager.close()
        await pool.close()
