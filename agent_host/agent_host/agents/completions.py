"""An agent run behind the chat endpoint: OpenAI chunks and completions, each step in an extra field."""

import time
from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_host.agents.events import AnswerEvent, DeltaEvent
from agent_host.agents.schemas import AgentRunRequest
from agent_host.agents.service import AgentService, PreparedRun
from agent_host.errors import BadUpstreamRequest
from agent_host.schemas import ChatCompletionRequest
from genailabs_accounts.models import Account


class ChatAgentOptions(BaseModel):
    """`agent: {...}` on a chat request; an empty object lets the router choose."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    max_steps: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=0)


class ChatAgentRun:
    """A routed agent run for one chat request."""

    def __init__(self, service: AgentService, prepared: PreparedRun) -> None:
        self.service = service
        self.prepared = prepared
        self.id = f"chatcmpl-agent-{prepared.run_id}"
        self.created = int(time.time())

    def _chunk(self, delta: ChoiceDelta, step: dict[str, Any] | None, finish: str | None = None) -> ChatCompletionChunk:
        choice = ChunkChoice(index=0, delta=delta, finish_reason=finish)  # type: ignore[arg-type]
        chunk = ChatCompletionChunk(
            id=self.id,
            object="chat.completion.chunk",
            created=self.created,
            model=self.prepared.model,
            choices=[choice],
        )
        if step is not None:
            chunk.agent_step = step  # type: ignore[attr-defined]  # OpenAI's models keep extra fields
        return chunk

    async def chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        """Steps as chunks with an empty delta and `agent_step`, then the answer as content; errors are raised."""
        yield self._chunk(ChoiceDelta(role="assistant", content=""), None)
        async for event in self.service.events(self.prepared, raise_errors=True):
            if isinstance(event, DeltaEvent):
                continue  # a step's text is only known to be the answer once the step ends
            step = event.model_dump(mode="json")
            if isinstance(event, AnswerEvent):
                yield self._chunk(ChoiceDelta(content=event.content), step)
            else:
                yield self._chunk(ChoiceDelta(), step)
        yield self._chunk(ChoiceDelta(), None, finish="stop")

    async def complete(self) -> ChatCompletion:
        """The answer as a chat completion with every step in `agent_steps`."""
        result = await self.service.run(self.prepared)
        message = ChatCompletionMessage(role="assistant", content=result.answer)
        return ChatCompletion(
            id=self.id,
            object="chat.completion",
            created=self.created,
            model=self.prepared.model,
            choices=[Choice(index=0, message=message, finish_reason="stop")],
            agent_steps=[step.model_dump(mode="json") for step in result.steps],  # type: ignore[call-arg]
            agent=result.agent,  # type: ignore[call-arg]
            stopped_by=result.stopped_by,  # type: ignore[call-arg]
        )


async def open_chat_agent(
    service: AgentService, request: ChatCompletionRequest, options: dict[str, Any], person: Account
) -> ChatAgentRun:
    """Validates the options and routes; raises (bad options, unknown agent) before any chunk is sent."""
    try:
        parsed = ChatAgentOptions.model_validate(options)
    except ValidationError as exc:
        raise BadUpstreamRequest(f"invalid agent options: {exc.errors()[0]['msg']}") from None
    if request.regenerate:
        raise BadUpstreamRequest("regenerate answers a plain chat turn again; an agent run needs its task in messages")
    run_request = AgentRunRequest(
        messages=request.messages,
        agent=parsed.name,
        model=request.model,
        session_id=request.session_id,
        collections=request.rag.collections if request.rag else None,
        stream=request.stream,
        max_steps=parsed.max_steps,
        max_tool_calls=parsed.max_tool_calls,
    )
    return ChatAgentRun(service, await service.prepare(run_request, person))
