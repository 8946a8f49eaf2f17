"""Agents: list them, and run one (SSE steps, or the whole run as JSON)."""

import json
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from agent_host.agents.events import AgentEvent
from agent_host.agents.schemas import AgentPublic, AgentRunRequest, AgentRunResult
from agent_host.deps import AgentServiceDep, CurrentUserDep

router = APIRouter(prefix="/agents", tags=["agents"])
log = logging.getLogger(__name__)


@router.get("")
async def list_agents(service: AgentServiceDep) -> list[AgentPublic]:
    return service.agents()


@router.post("/run", response_model=None)
async def run_agent(
    body: AgentRunRequest, service: AgentServiceDep, person: CurrentUserDep
) -> AgentRunResult | StreamingResponse:
    """Routes to an agent (or the one named) and runs it as the person: their session (another's is a 404),
    notes and readable collections; `stream: true` sends each step as an SSE event."""
    prepared = await service.prepare(body, person)
    if body.stream:
        headers = {"x-agent": prepared.agent.name, "x-agent-run-id": prepared.run_id}
        return StreamingResponse(sse_events(service.events(prepared)), media_type="text/event-stream", headers=headers)
    return await service.run(prepared)


async def sse_events(events: AsyncIterator[AgentEvent]) -> AsyncIterator[str]:
    async for event in events:
        if event.type == "error":
            log.warning("agent run ended with %s", json.dumps(event.error))
        yield f"data: {event.model_dump_json()}\n\n"
    yield "data: [DONE]\n\n"
