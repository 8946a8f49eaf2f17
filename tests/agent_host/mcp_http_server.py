"""A small MCP server over streamable HTTP for the tests: `python tests/agent_host/mcp_http_server.py --port P`.

Its tools cover what the host must cope with: a normal answer, a tool that hangs, an oversized result and a
tool that fails.
"""

import argparse
import asyncio

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError


def build_server(name: str) -> MCPServer:
    mcp = MCPServer(name, log_level="WARNING")

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @mcp.tool()
    async def sleep(seconds: float) -> str:
        """Wait this many seconds, then answer."""
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @mcp.tool()
    def big(size: int) -> str:
        """Return a text of `size` characters: digits 0-9 repeated."""
        return "".join(str(index % 10) for index in range(size))

    @mcp.tool()
    def fail(message: str) -> str:
        """Always fails with the message."""
        raise ToolError(message)

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="http-test")
    args = parser.parse_args()
    build_server(args.name).run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
