"""One configured MCP server: a long-lived task owns its client session, reconnects it, and serves tool calls.

The stdio and HTTP transports run anyio task groups that must be entered and left by the same task, so only
the supervisor task opens and closes the session; callers use the session object it publishes.
"""

import asyncio
import json
import logging
import math
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Literal

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from agent_host.mcp.config import REPO_ROOT, McpServerConfig
from agent_host.mcp.egress import EgressPolicy, mcp_http_client
from agent_host.mcp.tools import (
    ArgumentChecker,
    McpTool,
    ToolOutcome,
    ToolStats,
    cap,
    describe,
    qualify,
    result_text,
    shorten,
)

log = logging.getLogger(__name__)
Status = Literal["connecting", "up", "down"]
Source = Literal["file", "runtime"]  # the operator's servers file, or added through the API
CLIENT_INFO = Implementation(name="genailabs-agent-host", version="0.1.0")
MAX_TOOL_PAGES = 20


@dataclass(frozen=True)
class Limits:
    connect_timeout: float
    call_timeout: float
    retry_interval: float
    result_max_chars: int


class ServerConnection:
    """Status, tools and per-tool stats of one server, kept up to date by its supervisor task."""

    def __init__(
        self,
        name: str,
        config: McpServerConfig,
        limits: Limits,
        source: Source = "file",
        egress: EgressPolicy | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.limits = limits
        self.source = source
        self.egress = egress  # every request's destination is checked against it (servers added at run time)
        self.status: Status = "connecting"
        self.error: str | None = None
        self.connected_at: datetime | None = None
        self.tools: dict[str, McpTool] = {}  # by qualified name; kept while down so the listing still shows them
        self.stats: dict[str, ToolStats] = {}  # by the server's tool name; survives reconnections
        self.settled = asyncio.Event()  # set once the first connection attempt has ended, either way
        self._checkers: dict[str, ArgumentChecker] = {}
        self._client: Client | None = None
        self._wake = asyncio.Event()
        self._reconnect = False
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._scope: anyio.CancelScope | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.name}")

    async def stop(self) -> None:
        if self._task is None:
            return
        # anyio's cancellation, not Task.cancel(): a native cancel breaks through the stdio transport's shielded
        # shutdown and leaves the server process running.
        if self._scope is not None:
            self._scope.cancel()
        else:
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def refresh(self, timeout: float) -> None:
        """Reconnects and rediscovers tools; returns once that attempt has ended (or after `timeout`)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._reconnect = True
        self._wake.set()
        await asyncio.wait([waiter], timeout=timeout)

    def check_soon(self) -> None:
        """A call failed in a way that may mean the server is gone: probe it now instead of at the next beat."""
        self._wake.set()

    async def _supervise(self) -> None:
        with anyio.CancelScope() as self._scope:
            while True:
                await self._attempt()
                if self._reconnect:
                    continue
                with anyio.move_on_after(self.limits.retry_interval):
                    await self._wake.wait()

    async def _attempt(self) -> None:
        """One connection: up until it fails or a reconnect is asked for; any failure marks the server down."""
        waiters, self._waiters = self._waiters, []
        self._reconnect = False
        self._wake.clear()
        self.status = "connecting"
        # A stdio server's stderr goes to a private file: when it dies, its last words explain why.
        errlog = _stderr_file() if self.config.command is not None else None
        try:
            await self._serve(waiters, errlog)
        except TimeoutError:
            timeout = self.limits.connect_timeout
            self._mark_down(f"no answer within the connect timeout ({timeout:g} s)" + _tail(errlog))
        except Exception as exc:  # anyio's transports raise ExceptionGroups; any failure means down
            self._mark_down(shorten(explain(exc)) + _tail(errlog))
        finally:
            self._client = None
            _release(waiters)
            self.settled.set()
            if errlog is not None:
                errlog.close()

    async def _serve(self, waiters: list[asyncio.Future[None]], errlog: IO[bytes] | None) -> None:
        # One deadline for the whole handshake (the SDK's per-request timeout would allow one per probe), lifted
        # once the tools are listed; the scope encloses the session so it is entered and left in this task.
        with anyio.fail_after(self.limits.connect_timeout) as deadline:
            async with AsyncExitStack() as stack:
                client = Client(
                    await self._transport(stack, errlog),
                    read_timeout_seconds=self.limits.connect_timeout,
                    cache=None,  # tool lists are re-read on every heartbeat; a cached one would hide changes
                    client_info=CLIENT_INFO,
                )
                await stack.enter_async_context(client)
                await self._discover(client)
                deadline.deadline = math.inf
                self._client, self.status, self.error = client, "up", None
                self.connected_at = datetime.now(UTC)
                log.info("MCP server %s is up with %d tools", self.name, len(self.tools))
                _release(waiters)
                self.settled.set()
                await self._watch(client)

    async def _transport(self, stack: AsyncExitStack, errlog: IO[bytes] | None) -> Any:
        config = self.config
        if config.url is not None:
            client = mcp_http_client(config.headers, self.limits.connect_timeout, self.egress)
            http = await stack.enter_async_context(client)
            return streamable_http_client(config.url, http_client=http)
        command = sys.executable if config.command in ("python", "python3") else str(config.command)
        cwd = REPO_ROOT / config.cwd if config.cwd else REPO_ROOT
        params = StdioServerParameters(command=command, args=config.args, env=config.env or None, cwd=cwd)
        # stdio_client only hands the file to the subprocess as its stderr, so a binary file serves.
        return stdio_client(params, errlog=errlog or sys.stderr)  # type: ignore[arg-type]

    async def _discover(self, client: Client) -> None:
        listed, cursor = [], None
        for _ in range(MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            listed.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        tools: dict[str, McpTool] = {}
        checkers: dict[str, ArgumentChecker] = {}
        for tool in listed:
            qualified = qualify(self.name, tool.name, set(tools))
            schema = tool.input_schema or {"type": "object"}
            tools[qualified] = McpTool(self.name, tool.name, qualified, describe(tool.description), schema)
            checkers[tool.name] = ArgumentChecker(schema)
            self.stats.setdefault(tool.name, ToolStats())
        self.tools, self._checkers = tools, checkers

    async def _watch(self, client: Client) -> None:
        """Re-lists the tools every retry interval (a heartbeat that also sees new tools) until told to reconnect."""
        while True:
            with anyio.move_on_after(self.limits.retry_interval):
                await self._wake.wait()
            if self._reconnect:
                return
            self._wake.clear()
            await self._discover(client)

    def _mark_down(self, error: str) -> None:
        if error != self.error:  # one log line per new failure, not one per retry
            log.warning("MCP server %s is down: %s", self.name, error)
        self.status, self.error = "down", error

    async def call(self, tool: McpTool, arguments: dict[str, Any], timeout: float | None) -> ToolOutcome:
        """Runs one tool call; every failure comes back as an error outcome for the model to read."""
        started = time.perf_counter()
        is_error, truncated = True, False
        text = self._refusal(tool, arguments)
        if text is None:
            text, is_error = await self._send(tool, arguments, timeout or self.limits.call_timeout)
            text, truncated = cap(text, self.limits.result_max_chars)
        outcome = ToolOutcome(text, is_error, (time.perf_counter() - started) * 1000, truncated)
        self.stats.setdefault(tool.name, ToolStats()).record(outcome)
        return outcome

    def _refusal(self, tool: McpTool, arguments: dict[str, Any]) -> str | None:
        if self.status != "up" or self._client is None:
            return f"MCP server {self.name} is {self.status}: {self.error or 'not connected yet'}; try later"
        checker = self._checkers.get(tool.name)
        problems = checker.problems(arguments) if checker else None
        if problems is None:
            return None
        expected = json.dumps(tool.input_schema.get("properties", {}), separators=(",", ":"))[:300]
        return f"invalid arguments for {tool.qualified_name}: {problems}. Expected properties: {expected}"

    async def _send(self, tool: McpTool, arguments: dict[str, Any], timeout: float) -> tuple[str, bool]:
        client = self._client
        assert client is not None
        try:
            # The SDK's read timeout cancels the request on the server; the outer one guards a stuck transport.
            with anyio.fail_after(timeout + 2):
                result = await client.call_tool(tool.name, arguments, read_timeout_seconds=timeout)
        except TimeoutError:
            return f"{tool.qualified_name} timed out after {timeout:g} s", True
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                return f"{tool.qualified_name} timed out after {timeout:g} s", True
            if exc.code == CONNECTION_CLOSED:
                self.check_soon()
            return f"MCP server {self.name} failed the call: {shorten(exc.message)}", True
        except Exception as exc:  # a transport failure: the server may be gone
            self.check_soon()
            return f"MCP server {self.name} failed the call: {shorten(explain(exc))}", True
        return result_text(result), result.is_error


def explain(exc: BaseException) -> str:
    """The innermost cause of a (possibly grouped) failure, as one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = exc.message if isinstance(exc, MCPError) else str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _stderr_file() -> IO[bytes]:
    return tempfile.TemporaryFile()


def _tail(errlog: IO[bytes] | None) -> str:
    """The last lines a dead stdio server wrote to stderr, as a suffix for its error."""
    if errlog is None:
        return ""
    size = errlog.seek(0, 2)
    errlog.seek(max(0, size - 2000))
    text = errlog.read().decode("utf-8", errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f" (stderr: {' | '.join(lines[-3:])[-400:]})" if lines else ""


def _release(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
