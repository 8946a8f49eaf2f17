"""`GET /health/hub`: what the hub adds to LiteLLM's health routes, without a key.

Whether this instance shares limits and the response cache through Redis right now, whether the hub's
database answers, and how many request-log rows wait for it. Nothing secret: no URL carries a password.
"""

from typing import Any

from hub.errors import DatabaseUnavailable
from hub.state import HubState

HEALTH_PATH = "/health/hub"


async def hub_health(state: HubState) -> dict[str, Any]:
    try:
        await state.db.ensure_schema()
        database = "up"
    except DatabaseUnavailable:
        database = "down"
    return {
        **state.redis.describe(),
        "database": database,
        "database_at": state.db.where,
        "usage_rows_buffered": state.usage.buffered,
    }


def mount_health_route(state: HubState) -> None:
    """Adds the route to the proxy's app (once; the callback may be built again on a config reload)."""
    from litellm.proxy.proxy_server import app

    if any(getattr(route, "path", None) == HEALTH_PATH for route in app.router.routes):
        return

    async def health() -> dict[str, Any]:
        return await hub_health(state)

    app.add_api_route(HEALTH_PATH, health, methods=["GET"], tags=["health"], include_in_schema=True)
