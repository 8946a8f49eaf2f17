"""Wire models of the MCP servers API (`/mcp/servers`)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent_host.mcp.config import SERVER_NAME, McpServerConfig


class McpServerCreate(BaseModel):
    name: str = Field(pattern=SERVER_NAME)
    config: McpServerConfig


class LatencyStats(BaseModel):
    mean: float
    p50: float
    p95: float
    last: float


class McpToolPublic(BaseModel):
    name: str
    qualified_name: str
    description: str
    input_schema: dict[str, Any]
    calls: int
    errors: int
    last_error: str | None
    latency_ms: LatencyStats | None


class McpServerPublic(BaseModel):
    """A server's state; env and header values, and arguments that look like secrets, show as `***`."""

    name: str
    transport: Literal["stdio", "http"]
    # "file": the operator's servers file (read-only through the API); "runtime": added through the API and saved
    # in the database, so every replica runs it.
    source: Literal["file", "runtime"]
    target: str
    env: dict[str, str]
    headers: dict[str, str]
    status: Literal["connecting", "up", "down"]
    error: str | None
    connected_at: datetime | None
    tools: list[McpToolPublic]
