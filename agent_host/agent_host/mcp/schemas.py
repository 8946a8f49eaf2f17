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
    """A server's state; env values and headers are never shown (they may hold secrets)."""

    name: str
    transport: Literal["stdio", "http"]
    target: str
    status: Literal["connecting", "up", "down"]
    error: str | None
    connected_at: datetime | None
    tools: list[McpToolPublic]
