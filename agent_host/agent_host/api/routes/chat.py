"""OpenAI-compatible chat completions (SSE or not) and the proxy's model list."""

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import openai
from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from openai.types.chat import ChatCompletionChunk

from agent_host.agents.completions import open_chat_agent
from agent_host.api.errors import error_responses
from agent_host.deps import AgentServiceDep, ChatClientDep, CurrentUserDep, PipelineDep
from agent_host.errors import AgentHostError
from agent_host.pipeline.upstream import upstream_errors
from agent_host.schemas import ChatCompletionRequest

router = APIRouter(prefix="/v1", tags=["openai"], responses=error_responses(400, 404, 413, 422, 502, 503))
log = logging.getLogger(__name__)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, pipeline: PipelineDep, agents: AgentServiceDep, person: CurrentUserDep
) -> JSONResponse | StreamingResponse:
    """Chat completions as the proxy serves them; `session_id` adds history (`regenerate` answers it again),
    `rag` sources, `agent` a tool run."""
    if body.agent is not None:
        run = await open_chat_agent(agents, body, body.agent, person)  # bad options or agent: an error before any byte
        if body.stream:
            return StreamingResponse(sse_events(run.chunks()), media_type="text/event-stream")
        return JSONResponse((await run.complete()).model_dump(exclude_unset=True, mode="json"))
    turn = await pipeline.prepare(body, person)
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        events = sse_events(await pipeline.open_stream(turn, include_usage), turn.citations)
        return StreamingResponse(events, media_type="text/event-stream", headers=turn.facts.headers())
    response = await pipeline.complete(turn)
    content = response.model_dump(exclude_unset=True)
    content["context"] = turn.facts.model_dump()
    if turn.citations is not None:
        content["citations"] = turn.citations
    return JSONResponse(content, headers=turn.facts.headers())


async def sse_events(
    chunks: AsyncIterator[ChatCompletionChunk], citations: list[dict[str, Any]] | None = None
) -> AsyncIterator[str]:
    """The proxy's chunks; with RAG, the first chunk also carries `citations` (what [1], [2] refer to)."""
    try:
        async for chunk in chunks:
            data = chunk.model_dump(exclude_unset=True, mode="json")
            if citations is not None:
                data["citations"], citations = citations, None
            yield f"data: {json.dumps(data)}\n\n"
    except AgentHostError as exc:
        log.warning("stream ended with %s: %s", exc.type, exc.message)
        yield f"data: {json.dumps({'error': {'type': exc.type, 'message': exc.message}})}\n\n"
    yield "data: [DONE]\n\n"


@router.get("/models")
async def list_models(client: ChatClientDep) -> dict[str, Any]:
    """The proxy's /v1/models without its embedding models (the host chats; LiteLLM's /model/info has each
    group's mode). Unfiltered when /model/info does not answer."""
    async with upstream_errors():
        body: Any = await client.get("/models", cast_to=object)
    try:
        info: Any = await client.get("/model/info", cast_to=object)
    except openai.APIError as exc:
        log.warning("/model/info did not answer (%s): embedding models stay listed", type(exc).__name__)
        return dict(body)
    embedding = {
        entry.get("model_name")
        for entry in info.get("data", [])
        if isinstance(entry, dict) and (entry.get("model_info") or {}).get("mode") == "embedding"
    }
    return {**body, "data": [model for model in body.get("data", []) if model.get("id") not in embedding]}
