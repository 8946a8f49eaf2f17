"""Embeddings: Ollama's /api/embed and older /api/embeddings, and OpenAI's /v1/embeddings."""

import base64
import struct
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from local_runtime.api.deps import RuntimeDep, json_body
from local_runtime.api.disconnect import unless_disconnected
from local_runtime.api.openapi import error_responses, request_body
from local_runtime.embedding import embed
from local_runtime.errors import InvalidRequest
from local_runtime.openai_schemas import Embedding, EmbeddingList, EmbeddingsRequest, EmbeddingUsage, OpenAIError
from local_runtime.schemas import (
    EmbeddingRequest,
    EmbeddingResponse,
    EmbedRequest,
    EmbedResponse,
    OllamaError,
)

router = APIRouter(tags=["embeddings"])
OLLAMA_ERRORS = error_responses(OllamaError)


def as_base64(vector: list[float]) -> str:
    """The vector as OpenAI's base64: little-endian float32s (what the OpenAI SDK asks for by default)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


@router.post("/api/embed", openapi_extra=request_body(EmbedRequest), responses=OLLAMA_ERRORS, tags=["ollama"])
async def api_embed(
    body: Annotated[EmbedRequest, Depends(json_body(EmbedRequest))], runtime: RuntimeDep, request: Request
) -> EmbedResponse:
    request.state.model = body.model
    texts = [body.input] if isinstance(body.input, str) and body.input else []
    if isinstance(body.input, list):
        texts = body.input
    result = await unless_disconnected(
        request,
        embed(
            runtime, body.model, texts, truncate=body.truncate, options=body.options,
            keep_alive=body.keep_alive, dimensions=body.dimensions,
        ),
    )  # fmt: skip
    return EmbedResponse(
        model=body.model,
        embeddings=result.vectors,
        total_duration=result.total_duration,
        load_duration=result.load_duration,
        prompt_eval_count=result.prompt_eval_count,
    )


@router.post("/api/embeddings", openapi_extra=request_body(EmbeddingRequest), responses=OLLAMA_ERRORS, tags=["ollama"])
async def api_embeddings(
    body: Annotated[EmbeddingRequest, Depends(json_body(EmbeddingRequest))], runtime: RuntimeDep, request: Request
) -> EmbeddingResponse:
    """The older endpoint: one prompt, its vector as the model gives it (not normalized); no prompt loads."""
    request.state.model = body.model
    texts = [body.prompt] if body.prompt else []
    result = await unless_disconnected(
        request, embed(runtime, body.model, texts, options=body.options, keep_alive=body.keep_alive, normalize=False)
    )
    return EmbeddingResponse(embedding=result.vectors[0] if result.vectors else [])


@router.post(
    "/v1/embeddings",
    openapi_extra=request_body(EmbeddingsRequest),
    responses=error_responses(OpenAIError),
    tags=["openai"],
)
async def v1_embeddings(
    body: Annotated[EmbeddingsRequest, Depends(json_body(EmbeddingsRequest))], runtime: RuntimeDep, request: Request
) -> EmbeddingList:
    request.state.model = body.model
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or any(not text for text in texts):
        raise InvalidRequest("input must be a non-empty string or a list of non-empty strings")
    result = await unless_disconnected(request, embed(runtime, body.model, texts, dimensions=body.dimensions))
    data = [
        Embedding(embedding=as_base64(vector) if body.encoding_format == "base64" else vector, index=index)
        for index, vector in enumerate(result.vectors)
    ]
    usage = EmbeddingUsage(prompt_tokens=result.prompt_eval_count, total_tokens=result.prompt_eval_count)
    return EmbeddingList(data=data, model=body.model, usage=usage)
