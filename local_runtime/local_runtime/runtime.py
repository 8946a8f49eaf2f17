"""The runtime behind both APIs: turns a chat or prompt into a queued generation and its events."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from local_runtime.catalog import Catalog, ModelFile
from local_runtime.config import RuntimeSettings
from local_runtime.details import MetadataCache
from local_runtime.durations import DurationError, parse_keep_alive
from local_runtime.engine import Generation, GgufInfo, Sampling
from local_runtime.errors import InvalidRequest
from local_runtime.grammar import format_grammar, tool_grammar
from local_runtime.pool import Completion, ModelPool
from local_runtime.prompting import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, ChatTurn, ToolCall, ToolSpec, render_chat
from local_runtime.schemas import Options

# A text answer that cannot open a tool call: used right after a tool result.
NO_TOOL_CALL_GRAMMAR = "root ::= [^<\\x00] [^\\x00]*"

ToolMode = Literal["auto", "required", "none"]


@dataclass
class ToolCalls:
    calls: list[ToolCall]


Event = str | ToolCalls | Completion


@dataclass
class Prepared:
    """A validated request, ready to queue; building it raises the 4xx errors before any streaming."""

    model: ModelFile
    job: Generation
    num_ctx: int
    keep_alive: float
    started: float


def sampling_from(options: Options | None) -> Sampling:
    sampling = Sampling()
    if options is None:
        return sampling
    for name in (
        "temperature", "top_p", "top_k", "min_p", "typical_p", "repeat_penalty",
        "presence_penalty", "frequency_penalty", "seed", "num_predict",
    ):  # fmt: skip
        value = getattr(options, name)
        if value is not None:
            setattr(sampling, name, value)
    if options.stop is not None:
        sampling.stop = [options.stop] if isinstance(options.stop, str) else list(options.stop)
    return sampling


def parse_tool_calls(text: str) -> list[ToolCall] | None:
    """The calls in a `<tool_call>[...]</tool_call>` reply, or None when it was cut short."""
    body = text.strip().removeprefix(TOOL_CALL_OPEN).removesuffix(TOOL_CALL_CLOSE)
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        return None
    return [ToolCall(name=item["name"], arguments=item.get("arguments", {})) for item in payload]


class Runtime:
    def __init__(self, settings: RuntimeSettings, catalog: Catalog, pool: ModelPool) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        self.metadata = MetadataCache()

    async def gguf_info(self, model: ModelFile) -> GgufInfo:
        return await asyncio.to_thread(self.metadata.read, model.path)

    def keep_alive(self, value: str | float | None) -> float:
        try:
            return parse_keep_alive(value, self.settings.keep_alive)
        except DurationError as exc:
            raise InvalidRequest(str(exc)) from exc

    def num_ctx(self, options: Options | None) -> int:
        return options.num_ctx if options is not None and options.num_ctx else self.settings.num_ctx

    async def prepare_chat(
        self,
        model_name: str,
        turns: list[ChatTurn],
        tools: list[ToolSpec],
        options: Options | None,
        fmt: str | dict[str, Any] | None,
        keep_alive: str | float | None,
        tool_mode: ToolMode = "auto",
    ) -> Prepared:
        started = time.perf_counter()
        model = self.catalog.resolve(model_name)
        grammar = format_grammar(fmt)
        # After a tool result the model answers in text; offering the tools again makes small
        # models repeat the call they just made.
        after_tool_result = bool(turns) and turns[-1].role == "tool"
        offered = [] if tool_mode == "none" or after_tool_result else tools
        if after_tool_result and grammar is None:
            grammar = NO_TOOL_CALL_GRAMMAR
        info = await self.gguf_info(model)
        template = info.metadata.get("tokenizer.chat_template")
        prompt = render_chat(turns, offered, template, info.bos_token, info.eos_token)
        job = Generation(
            prompt=prompt,
            sampling=sampling_from(options),
            grammar=grammar,
            tool_grammar=tool_grammar(offered) if offered else None,
            tools_required=tool_mode == "required",
        )
        return Prepared(model, job, self.num_ctx(options), self.keep_alive(keep_alive), started)

    async def prepare_generate(
        self,
        model_name: str,
        prompt: str,
        system: str | None,
        raw: bool,
        options: Options | None,
        fmt: str | dict[str, Any] | None,
        keep_alive: str | float | None,
    ) -> Prepared:
        if raw:
            started = time.perf_counter()
            model = self.catalog.resolve(model_name)
            job = Generation(prompt=prompt, sampling=sampling_from(options), grammar=format_grammar(fmt))
            return Prepared(model, job, self.num_ctx(options), self.keep_alive(keep_alive), started)
        turns = ([ChatTurn("system", system)] if system else []) + [ChatTurn("user", prompt)]
        return await self.prepare_chat(model_name, turns, [], options, fmt, keep_alive)

    async def run(self, prepared: Prepared) -> AsyncIterator[Event]:
        """Text pieces, or one ToolCalls when the model chose to call tools, then the Completion."""
        job = prepared.job
        buffered: list[str] = []
        async for event in self.pool.generate(
            prepared.model, job, prepared.num_ctx, prepared.keep_alive, prepared.started
        ):
            if isinstance(event, Completion):
                if job.calls_tools:
                    text = "".join(buffered)
                    calls = parse_tool_calls(text)
                    yield ToolCalls(calls) if calls is not None else text
                yield event
            elif job.calls_tools:
                buffered.append(event)  # a half-written call is no use to a client
            else:
                yield event
