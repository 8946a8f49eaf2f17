"""MCP servers' tools as LangChain tools: their JSON schema as-is, calls through the host's MCP manager."""

from typing import Any, Protocol

from langchain_core.tools import BaseTool, StructuredTool

from agent_host.agents.tools import ToolFailure


class McpToolInfo(Protocol):
    qualified_name: str
    description: str
    input_schema: dict[str, Any]


class McpOutcome(Protocol):
    text: str
    is_error: bool


class McpTools(Protocol):
    """What the agents use of agent_host.mcp.manager.McpManager."""

    def tools(self) -> list[Any]: ...

    async def call(self, qualified_name: str, arguments: dict[str, Any], timeout: float | None = None) -> Any: ...


def one_line(description: str, fallback: str) -> str:
    """The first line only: a small model reads long, multi-line tool descriptions poorly."""
    first = next((line.strip() for line in description.splitlines() if line.strip()), "")
    return first[:200] or fallback


def mcp_tools(manager: McpTools, timeout: float) -> list[BaseTool]:
    """One LangChain tool per tool of every MCP server that is up, named `<server>__<tool>`."""
    return [_wrap(manager, info, timeout) for info in manager.tools()]


def _wrap(manager: McpTools, info: McpToolInfo, timeout: float) -> BaseTool:
    name = info.qualified_name

    async def call(**arguments: Any) -> str:
        outcome: McpOutcome = await manager.call(name, arguments, timeout)
        if outcome.is_error:
            raise ToolFailure(outcome.text)
        return outcome.text

    schema = info.input_schema or {"type": "object", "properties": {}}
    return StructuredTool(
        name=name,
        description=one_line(info.description, f"the MCP tool {name}"),
        args_schema=schema,
        coroutine=call,
    )
