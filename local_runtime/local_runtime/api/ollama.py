"""Ollama's native API: /api/version, tags, ps, show, chat, generate."""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from local_runtime.api.deps import RuntimeDep, json_body
from local_runtime.api.disconnect import unless_disconnected
from local_runtime.api.openapi import error_responses, request_body
from local_runtime.api.streaming import dump, guarded, ndjson
from local_runtime.details import context_length, model_details, model_info, modelfile, parameters_text
from local_runtime.errors import RuntimeServiceError
from local_runtime.pool import Completion, is_embedding_only
from local_runtime.prompting import ChatTurn, ToolCall, ToolSpec
from local_runtime.runtime import Event, ToolCalls
from local_runtime.schemas import (
    ChatChunk,
    ChatRequest,
    FunctionCall,
    GenerateChunk,
    GenerateRequest,
    GenerationRequest,
    Message,
    ModelEntry,
    OllamaError,
    PsResponse,
    ReplyMessage,
    RunningModel,
    ShowRequest,
    ShowResponse,
    Stats,
    TagsResponse,
    Tool,
    ToolCallBody,
    VersionResponse,
)
from local_runtime.version import OLLAMA_API_VERSION

log = logging.getLogger("local_runtime.api")
router = APIRouter(prefix="/api", tags=["ollama"], responses=error_responses(OllamaError))


def timestamp() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def stats(completion: Completion) -> Stats:
    finish = completion.finish
    return Stats(
        done_reason=finish.done_reason,
        total_duration=completion.total_duration,
        load_duration=completion.load_duration,
        prompt_eval_count=finish.prompt_eval_count,
        prompt_eval_duration=finish.prompt_eval_duration,
        eval_count=finish.eval_count,
        eval_duration=finish.eval_duration,
    )


def chat_turns(messages: list[Message]) -> list[ChatTurn]:
    return [
        ChatTurn(
            role=message.role,
            content=message.content or "",
            tool_calls=[ToolCall(call.function.name, call.function.arguments) for call in message.tool_calls or []],
            tool_name=message.tool_name,
        )
        for message in messages
    ]


def tool_specs(tools: list[Tool] | None) -> list[ToolSpec]:
    return [ToolSpec(tool.function.name, tool.function.description, tool.function.parameters) for tool in tools or []]


def tool_call_bodies(calls: list[ToolCall]) -> list[ToolCallBody]:
    return [ToolCallBody(function=FunctionCall(name=call.name, arguments=call.arguments)) for call in calls]


async def chat_chunks(model: str, events: AsyncIterator[Event]) -> AsyncIterator[ChatChunk]:
    async for event in events:
        if isinstance(event, Completion):
            yield ChatChunk(
                model=model, created_at=timestamp(), message=ReplyMessage(), done=True, **dump(stats(event))
            )
        elif isinstance(event, ToolCalls):
            message = ReplyMessage(tool_calls=tool_call_bodies(event.calls))
            yield ChatChunk(model=model, created_at=timestamp(), message=message, done=False)
        else:
            yield ChatChunk(model=model, created_at=timestamp(), message=ReplyMessage(content=event), done=False)


async def generate_chunks(model: str, events: AsyncIterator[Event]) -> AsyncIterator[GenerateChunk]:
    async for event in events:
        if isinstance(event, Completion):
            yield GenerateChunk(model=model, created_at=timestamp(), response="", done=True, **dump(stats(event)))
        elif isinstance(event, str):
            yield GenerateChunk(model=model, created_at=timestamp(), response=event, done=False)


async def whole_chat(chunks: AsyncIterator[ChatChunk]) -> ChatChunk:
    """The stream folded into one reply, as `stream: false` returns it."""
    content: list[str] = []
    calls: list[ToolCallBody] = []
    async for chunk in chunks:
        content.append(chunk.message.content)
        calls.extend(chunk.message.tool_calls or [])
        if chunk.done:
            chunk.message = ReplyMessage(content="".join(content), tool_calls=calls or None)
            return chunk
    raise RuntimeServiceError("generation ended without a result")


async def whole_generate(chunks: AsyncIterator[GenerateChunk]) -> GenerateChunk:
    text: list[str] = []
    async for chunk in chunks:
        text.append(chunk.response)
        if chunk.done:
            chunk.response = "".join(text)
            return chunk
    raise RuntimeServiceError("generation ended without a result")


async def load_only(runtime: RuntimeDep, body: GenerationRequest) -> dict[str, Any]:
    """Ollama's empty request: load the model, or unload it when keep_alive is 0."""
    keep_alive = await runtime.load(body.model, body.options, body.keep_alive)
    reason = "unload" if keep_alive <= 0 else "load"
    return {"model": body.model, "created_at": timestamp(), "done": True, "done_reason": reason}


@router.get("/version")
async def version() -> VersionResponse:
    return VersionResponse(version=OLLAMA_API_VERSION)


@router.get("/tags")
async def tags(runtime: RuntimeDep) -> TagsResponse:
    entries = []
    for model in runtime.catalog.scan().values():
        info = await runtime.gguf_info(model)
        digest = await asyncio.to_thread(runtime.catalog.digest, model)
        entries.append(
            ModelEntry(
                name=model.name,
                model=model.name,
                modified_at=model.modified_at,
                size=model.size,
                digest=digest,
                details=model_details(info.metadata),
            )
        )
    return TagsResponse(models=entries)


@router.get("/ps")
async def ps(runtime: RuntimeDep) -> PsResponse:
    """One entry per model, as Ollama lists them: a model with a chat and an embedding runner loaded counts
    both runners' memory and expires with the later one."""
    running: dict[str, RunningModel] = {}
    for slot in runtime.pool.loaded():
        engine = slot.engine
        if engine is None or slot.expires_at is None:
            continue
        size = engine.runner.memory()  # what its runner holds in memory (weights, KV cache, buffers)
        seen = running.get(slot.model.name)
        if seen is not None:
            seen.size += size
            seen.expires_at = max(seen.expires_at, slot.expires_at)
            if not engine.runner.spec.embedding:  # the chat runner's context is the one a client sizes for
                seen.context_length = engine.runner.spec.num_ctx
            continue
        running[slot.model.name] = RunningModel(
            name=slot.model.name,
            model=slot.model.name,
            size=size,
            digest=await asyncio.to_thread(runtime.catalog.digest, slot.model),
            details=model_details(engine.info.metadata),
            expires_at=slot.expires_at,
            context_length=engine.runner.spec.num_ctx,
        )
    return PsResponse(models=list(running.values()))


@router.post("/show", openapi_extra=request_body(ShowRequest))
async def show(
    body: Annotated[ShowRequest, Depends(json_body(ShowRequest))], runtime: RuntimeDep, request: Request
) -> ShowResponse:
    request.state.model = body.model
    model = runtime.catalog.resolve(body.model)
    info = await runtime.gguf_info(model)
    template = info.metadata.get("tokenizer.chat_template") or model.template or ""
    parameters = parameters_text([info.eos_token] if info.eos_token else [], model.params)
    details_info = model_info(info.metadata)
    trained = context_length(info.metadata)
    if trained is not None:
        details_info["context_length"] = trained
    return ShowResponse(
        modelfile=modelfile(model.path, template, parameters, model.system),
        parameters=parameters,
        template=template,
        details=model_details(info.metadata),
        model_info=details_info,
        # As Ollama: a GGUF that names a pooling only embeds; a chat model also embeds through its runner's
        # embedding mode, but Ollama lists what it was made for.
        capabilities=["embedding"] if is_embedding_only(info.metadata) else ["completion", "tools"],
        modified_at=model.modified_at,
    )


@router.post("/chat", openapi_extra=request_body(ChatRequest))
async def chat(
    body: Annotated[ChatRequest, Depends(json_body(ChatRequest))], runtime: RuntimeDep, request: Request
) -> Response:
    request.state.model = body.model
    if not body.messages:
        reply = await load_only(runtime, body)
        return JSONResponse({**reply, "message": {"role": "assistant", "content": ""}})
    prepared = await runtime.prepare_chat(
        body.model, chat_turns(body.messages), tool_specs(body.tools), body.options, body.format, body.keep_alive
    )
    chunks = chat_chunks(body.model, runtime.run(prepared))
    if body.stream:
        return ndjson(guarded(chunks, "generation"))
    return JSONResponse(dump(await unless_disconnected(request, whole_chat(chunks))))


@router.post("/generate", openapi_extra=request_body(GenerateRequest))
async def generate(
    body: Annotated[GenerateRequest, Depends(json_body(GenerateRequest))], runtime: RuntimeDep, request: Request
) -> Response:
    request.state.model = body.model
    if not body.prompt and not body.system:
        reply = await load_only(runtime, body)
        return JSONResponse({**reply, "response": ""})
    prepared = await runtime.prepare_generate(
        body.model, body.prompt or "", body.system, body.raw, body.options, body.format, body.keep_alive
    )
    chunks = generate_chunks(body.model, runtime.run(prepared))
    if body.stream:
        return ndjson(guarded(chunks, "generation"))
    return JSONResponse(dump(await unless_disconnected(request, whole_generate(chunks))))
