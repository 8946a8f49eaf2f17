"""The MCP servers added through the API, in PostgreSQL (`mcp_servers`, migration 0004): one list for every replica.

Each replica reads the table to know which servers to keep connected; an add is an INSERT whose primary key
decides between two replicas adding one name at once, so exactly one of them gets it.
"""

from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from agent_host.db import PgStore
from agent_host.mcp.config import McpServerConfig


class McpServerStore(PgStore):
    unavailable = "the database holding the MCP server list is unreachable"

    async def load(self) -> tuple[dict[str, McpServerConfig], dict[str, str]]:
        """Every saved server by name, and the names of rows that are not a valid HTTP server (with why)."""
        async with self.connection() as conn:
            cursor = await conn.execute("SELECT name, config FROM mcp_servers ORDER BY name")
            rows = await cursor.fetchall()
        servers: dict[str, McpServerConfig] = {}
        invalid: dict[str, str] = {}
        for row in rows:
            try:
                config = McpServerConfig.model_validate(row["config"])
            except ValidationError as exc:
                invalid[row["name"]] = str(exc.errors()[0]["msg"])
                continue
            if config.url is None:  # the table's CHECK refuses it; a hand-made row is still not run
                invalid[row["name"]] = "stdio servers come only from the operator's servers file"
                continue
            servers[row["name"]] = config
        return servers, invalid

    async def insert(self, name: str, config: McpServerConfig) -> bool:
        """Saves a new server; False when the name is taken (by another replica's add too)."""
        async with self.connection() as conn:
            cursor = await conn.execute(
                "INSERT INTO mcp_servers (name, config) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, Jsonb(config.to_file())),
            )
        return cursor.rowcount == 1

    async def delete(self, name: str) -> bool:
        """Forgets a server; False when no replica had saved it."""
        async with self.connection() as conn:
            cursor = await conn.execute("DELETE FROM mcp_servers WHERE name = %s", (name,))
        return cursor.rowcount == 1

    async def import_once(self, source: str, servers: dict[str, McpServerConfig]) -> int | None:
        """Saves a legacy run-time file's servers unless that file was imported before; how many were new
        (None: imported already). Replicas starting together queue on the import's key: one imports."""
        async with self.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO mcp_server_imports (source, servers) VALUES (%s, %s) ON CONFLICT (source) DO NOTHING",
                (source, len(servers)),
            )
            if cursor.rowcount == 0:
                return None
            added = 0
            for name, config in servers.items():
                cursor = await conn.execute(
                    "INSERT INTO mcp_servers (name, config) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                    (name, Jsonb(config.to_file())),
                )
                added += cursor.rowcount
        return added


async def open_store_pool(url: str, timeout: float) -> AsyncConnectionPool:
    """A small pool of the manager's own: the host starts (with the operator's servers) while the database is down."""
    kwargs: dict[str, Any] = {"connect_timeout": max(1, int(timeout))}
    pool = AsyncConnectionPool(url, min_size=1, max_size=2, timeout=timeout, open=False, kwargs=kwargs)
    await pool.open(wait=False)
    return pool
