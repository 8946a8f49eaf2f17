"""POST /api/pull: a model from an Ollama registry, with Ollama's progress lines."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from local_runtime.api.deps import RuntimeDep, json_body
from local_runtime.api.disconnect import unless_disconnected
from local_runtime.api.openapi import error_responses, request_body
from local_runtime.api.streaming import guarded, ndjson
from local_runtime.errors import InvalidRequest
from local_runtime.registry import Progress
from local_runtime.schemas import OllamaError

log = logging.getLogger("local_runtime.api")
router = APIRouter(prefix="/api", tags=["ollama"], responses=error_responses(OllamaError))


class PullRequest(BaseModel):
    """Ollama's api.PullRequest; `name` is the older spelling of `model`."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, max_length=600)
    name: str | None = Field(default=None, max_length=600)
    insecure: bool = False
    stream: bool = True

    @model_validator(mode="after")
    def either_name(self) -> "PullRequest":
        if not (self.model or self.name or "").strip():
            raise InvalidRequest("model is required")
        return self

    @property
    def target(self) -> str:
        return (self.model or self.name or "").strip()


async def progress_lines(progress: AsyncIterator[Progress]) -> AsyncIterator[dict[str, Any]]:
    async for step in progress:
        yield step.body()


async def last_step(progress: AsyncIterator[Progress]) -> dict[str, Any]:
    final: dict[str, Any] = {}
    async for step in progress:
        final = step.body()
    return final


@router.post(
    "/pull",
    openapi_extra=request_body(PullRequest),
    responses={
        403: {"model": OllamaError, "description": "a built-in model or a GGUF in the models dir has that name"},
        507: {"model": OllamaError, "description": "not enough disk space, or the models dir not writable"},
    },
)
async def pull(
    body: Annotated[PullRequest, Depends(json_body(PullRequest))], runtime: RuntimeDep, request: Request
) -> Response:
    request.state.model = body.target
    name = runtime.catalog.store.parse_name(body.target)  # 400 "invalid model name" before any line
    runtime.catalog.refuse_shadowing(name)  # 403: a builtin or a loose GGUF already answers to it
    progress = runtime.puller.pull(name, insecure=body.insecure)
    if body.stream:
        return ndjson(guarded(progress_lines(progress), "pull"))
    # One answer: {"status": "success"}, or the failure with its status (Ollama sends every failure as 500).
    return JSONResponse(await unless_disconnected(request, last_step(progress)))
