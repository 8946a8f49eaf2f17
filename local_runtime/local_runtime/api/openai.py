"""OpenAI-compatible routes: /v1/models, /v1/chat/completions and the legacy text /v1/completions."""

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from local_runtime.api.deps import RuntimeDep, json_body
from local_runtime.api.disconnect import unless_disconnected
from local_runtime.api.openapi import error_responses, request_body
from local_runtime.api.streaming import dump, guarded, sse
from local_runtime.errors import InvalidRequest, RuntimeServiceError
from local_runtime.openai_schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChunkChoice,
    CompletionChoice,
    CompletionRequest,
    Delta,
    FunctionCallBody,
    ModelCard,
    ModelList,
    OpenAIError,
    ReplyMessage,
    TextCompletion,
    ToolCallBody,
    Usage,
)
from local_runtime.pool import Completion
from local_runtime.prompting import ChatTurn, ToolCall, ToolSpec
from local_runtime.runtime import Event, ToolCalls, ToolMode
from local_runtime.schemas import Options

router = APIRouter(prefix="/v1", tags=["openai"], responses=error_responses(OpenAIError))


def chat_turns(messages: list[ChatMessage]) -> list[ChatTurn]:
    names = {call.id: call.function.name for message in messages for call in message.tool_calls or []}
    turns = []
    for message in messages:
        calls = []
        for call in message.tool_calls or []:
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except (json.JSONDecodeError, RecursionError) as exc:
                raise InvalidRequest(f"tool call arguments are not JSON: {exc}") from exc
            calls.append(ToolCall(call.function.name, arguments))
        role = "system" if message.role == "developer" else message.role
        tool_name = message.name or names.get(message.tool_call_id or "")
        turns.append(ChatTurn(role=role, content=message.text(), tool_calls=calls, tool_name=tool_name))
    return turns


def tool_selection(body: ChatCompletionRequest) -> tuple[list[ToolSpec], ToolMode]:
    tools = [ToolSpec(t.function.name, t.function.description, t.function.parameters) for t in body.tools or []]
    choice = body.tool_choice
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        chosen = [tool for tool in tools if tool.name == name]
        if not chosen:
            raise InvalidRequest(f"tool_choice names an unknown tool: {name!r}")
        return chosen, "required"
    if choice in (None, "auto"):
        return tools, "auto"
    if choice in ("none", "required"):
        return tools, "none" if choice == "none" else "required"
    raise InvalidRequest(f"invalid tool_choice: {choice!r}")


def options_from(body: ChatCompletionRequest) -> Options:
    return Options(
        temperature=body.temperature,
        top_p=body.top_p,
        seed=body.seed,
        num_predict=body.max_completion_tokens or body.max_tokens,
        stop=body.stop,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
    )


def format_from(body: ChatCompletionRequest) -> str | dict[str, Any] | None:
    response_format = body.response_format
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return "json"
    schema = (response_format.json_schema or {}).get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest("response_format json_schema needs a 'schema' object")
    return schema


def openai_calls(calls: list[ToolCall], with_index: bool) -> list[ToolCallBody]:
    return [
        ToolCallBody(
            index=index if with_index else None,
            id=f"call_{uuid.uuid4().hex[:24]}",
            function=FunctionCallBody(name=call.name, arguments=json.dumps(call.arguments)),
        )
        for index, call in enumerate(calls)
    ]


def usage(completion: Completion) -> Usage:
    finish = completion.finish
    total = finish.prompt_eval_count + finish.eval_count
    return Usage(prompt_tokens=finish.prompt_eval_count, completion_tokens=finish.eval_count, total_tokens=total)


def finish_reason(completion: Completion, called: bool) -> str:
    return "tool_calls" if called else completion.finish.done_reason


async def completion_chunks(
    body: ChatCompletionRequest, events: AsyncIterator[Event], ident: str, created: int
) -> AsyncIterator[ChatCompletionChunk]:
    def chunk(delta: Delta, reason: str | None = None) -> ChatCompletionChunk:
        choice = ChunkChoice(delta=delta, finish_reason=reason)
        return ChatCompletionChunk(id=ident, created=created, model=body.model, choices=[choice])

    yield chunk(Delta(role="assistant", content=""))
    called = False
    async for event in events:
        if isinstance(event, Completion):
            yield chunk(Delta(), finish_reason(event, called))
            if body.stream_options is not None and body.stream_options.include_usage:
                yield ChatCompletionChunk(id=ident, created=created, model=body.model, choices=[], usage=usage(event))
        elif isinstance(event, ToolCalls):
            called = True
            yield chunk(Delta(tool_calls=openai_calls(event.calls, with_index=True)))
        else:
            yield chunk(Delta(content=event))


async def whole_completion(
    body: ChatCompletionRequest, events: AsyncIterator[Event], ident: str, created: int
) -> ChatCompletion:
    content: list[str] = []
    calls: list[ToolCall] = []
    async for event in events:
        if isinstance(event, ToolCalls):
            calls.extend(event.calls)
        elif isinstance(event, str):
            content.append(event)
        else:
            message = ReplyMessage(
                content="".join(content) if not calls else None,
                tool_calls=openai_calls(calls, with_index=False) if calls else None,
            )
            choice = Choice(message=message, finish_reason=finish_reason(event, bool(calls)))
            return ChatCompletion(id=ident, created=created, model=body.model, choices=[choice], usage=usage(event))
    raise RuntimeServiceError("generation ended without a result")


@router.get("/models")
async def models(runtime: RuntimeDep) -> ModelList:
    cards = [
        ModelCard(id=model.name, created=int(model.modified_at.timestamp()))
        for model in runtime.catalog.scan().values()
    ]
    return ModelList(data=cards)


@router.post("/chat/completions", openapi_extra=request_body(ChatCompletionRequest))
async def chat_completions(
    body: Annotated[ChatCompletionRequest, Depends(json_body(ChatCompletionRequest))],
    runtime: RuntimeDep,
    request: Request,
) -> Response:
    request.state.model = body.model
    tools, mode = tool_selection(body)
    prepared = await runtime.prepare_chat(
        body.model,
        chat_turns(body.messages),
        tools,
        options_from(body),
        format_from(body),
        None,
        mode,
        format_field="response_format.json_schema.schema",
    )
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    events = runtime.run(prepared)
    if body.stream:
        return sse(guarded(completion_chunks(body, events, ident, created), "generation"))
    return JSONResponse(dump(await unless_disconnected(request, whole_completion(body, events, ident, created))))


def completion_options(body: CompletionRequest) -> Options:
    """OpenAI's defaults where the request leaves them out (temperature 1, top_p 1), as Ollama maps them."""
    return Options(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
        num_predict=body.max_tokens,
        stop=body.stop,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
    )


def completion_prompt(body: CompletionRequest) -> str:
    """The one prompt; what this runtime does not do is refused rather than ignored."""
    if body.n != 1 or (body.best_of is not None and body.best_of != 1):
        raise InvalidRequest("only n=1 (and best_of=1) is supported")
    if body.echo:
        raise InvalidRequest("echo is not supported")
    if body.logprobs is not None:
        raise InvalidRequest("logprobs is not supported")
    if body.suffix:
        raise InvalidRequest("suffix is not supported")
    if isinstance(body.prompt, list):
        if len(body.prompt) != 1:
            raise InvalidRequest("prompt must be a string or a list of one string")
        return body.prompt[0]
    return body.prompt


def text_completion(body: CompletionRequest, ident: str, created: int, choice: CompletionChoice) -> TextCompletion:
    return TextCompletion(id=ident, created=created, model=body.model, choices=[choice])


def completion_dump(completion: TextCompletion) -> dict[str, Any]:
    """As OpenAI sends it: null logprobs and finish_reason spelled out, usage only when there is one."""
    return completion.model_dump(mode="json", exclude={"usage"} if completion.usage is None else set())


async def text_chunks(
    body: CompletionRequest, events: AsyncIterator[Event], ident: str, created: int
) -> AsyncIterator[dict[str, Any]]:
    async for event in events:
        if isinstance(event, Completion):
            reason = event.finish.done_reason
            yield completion_dump(
                text_completion(body, ident, created, CompletionChoice(text="", finish_reason=reason))
            )
            if body.stream_options is not None and body.stream_options.include_usage:
                final = TextCompletion(id=ident, created=created, model=body.model, choices=[], usage=usage(event))
                yield completion_dump(final)
        elif isinstance(event, str):
            yield completion_dump(text_completion(body, ident, created, CompletionChoice(text=event)))


async def whole_text(body: CompletionRequest, events: AsyncIterator[Event], ident: str, created: int) -> TextCompletion:
    text: list[str] = []
    async for event in events:
        if isinstance(event, str):
            text.append(event)
        elif isinstance(event, Completion):
            choice = CompletionChoice(text="".join(text), finish_reason=event.finish.done_reason)
            completion = text_completion(body, ident, created, choice)
            completion.usage = usage(event)
            return completion
    raise RuntimeServiceError("generation ended without a result")


@router.post("/completions", openapi_extra=request_body(CompletionRequest))
async def completions(
    body: Annotated[CompletionRequest, Depends(json_body(CompletionRequest))],
    runtime: RuntimeDep,
    request: Request,
) -> Response:
    """Text completion of the prompt as written (no chat template), on the raw-prompt generation path."""
    request.state.model = body.model
    prompt = completion_prompt(body)
    if not prompt:
        raise InvalidRequest("prompt must not be empty")
    prepared = await runtime.prepare_generate(body.model, prompt, None, True, completion_options(body), None, None)
    ident, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    events = runtime.run(prepared)
    if body.stream:
        return sse(guarded(text_chunks(body, events, ident, created), "generation"))
    completion = await unless_disconnected(request, whole_text(body, events, ident, created))
    return JSONResponse(completion_dump(completion))
