"""Liveness and readiness (proxy and database); the only routes without auth."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from agent_host.deps import ChatClientDep, SessionStoreDep
from agent_host.errors import AgentHostError
from agent_host.pipeline.upstream import upstream_errors

router = APIRouter(prefix="/health", tags=["health"])


class Liveness(BaseModel):
    status: str


@router.get("")
async def health() -> Liveness:
    return Liveness(status="ok")


@router.get("/ready", response_model=None)
async def ready(client: ChatClientDep, store: SessionStoreDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        async with upstream_errors():
            await client.get("/models", cast_to=object)
        checks["proxy"] = "ok"
    except AgentHostError as exc:
        checks["proxy"] = exc.message
    try:
        await store.ping()
        checks["database"] = "ok"
    except AgentHostError as exc:
        checks["database"] = exc.message
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if healthy else "not ready", "checks": checks}, 200 if healthy else 503)
