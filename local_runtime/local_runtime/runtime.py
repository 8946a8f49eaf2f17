"""The runtime behind both APIs: turns a chat or prompt into a queued generation and its events."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from local_runtime.catalog import Catalog, ModelFile
from local_runtime.config import RuntimeSettings
from local_runtime.details import MetadataCache, context_length
from local_runtime.durations import DurationError, parse_keep_alive
from local_runtime.engine import Generation, Sampling
from local_runtime.errors import InvalidRequest
from local_runtime.ggufmeta import GgufInfo
from local_runtime.gotemplate import TemplateUnsupported, compile_template
from local_runtime.grammar import format_grammar, tool_grammar
from local_runtime.pool import Admission, Completion, ModelPool
from local_runtime.prompting import (
    TOOL_CALL_CLOSE,
    TOOL_CALL_OPEN,
    ChatTurn,
    ToolCall,
    ToolSpec,
    render_chat,
    render_go_chat,
)
from local_runtime.registry import Puller
from local_runtime.schema_limits import SchemaLimits, check_schema
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
    """A validated, admitted request; building it raises the 4xx and 503 errors before any streaming."""

    model: ModelFile
    job: Generation
    num_ctx: int
    keep_alive: float
    started: float
    admission: Admission


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


def with_params(params: dict[str, Any], options: Options | None) -> Options | None:
    """A model's params (its manifest's params layer) as defaults under the request's options, as Ollama
    applies them; a param this runtime does not know or cannot read is skipped."""
    defaults: dict[str, Any] = {}
    for key, value in params.items():
        if key in Options.model_fields:
            try:
                Options.model_validate({key: value})
            except ValidationError:
                continue
            defaults[key] = value
    if not defaults:
        return options
    return Options.model_validate({**defaults, **(options.model_dump(exclude_none=True) if options else {})})


def with_system(model: ModelFile, turns: list[ChatTurn]) -> list[ChatTurn]:
    """The model's SYSTEM as the system prompt when the request brings none (Ollama's rule)."""
    if model.system and not any(turn.role == "system" for turn in turns):
        return [ChatTurn("system", model.system), *turns]
    return turns


def parse_tool_calls(text: str) -> list[ToolCall] | None:
    """The calls in a `<tool_call>[...]</tool_call>` reply, or None when it was cut short."""
    body = text.strip().removeprefix(TOOL_CALL_OPEN).removesuffix(TOOL_CALL_CLOSE)
    try:
        payload = json.loads(body)
    except json.JSONDecodeError:
        return None
    return [ToolCall(name=item["name"], arguments=item.get("arguments", {})) for item in payload]


class Runtime:
    def __init__(self, settings: RuntimeSettings, catalog: Catalog, metadata: MetadataCache, pool: ModelPool) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        self.metadata = metadata
        self.puller = Puller(
            catalog.store, settings.insecure_registries, settings.registry_timeout, settings.pull_free_margin
        )
        self.schema_limits = SchemaLimits(
            max_bound=settings.max_schema_bound,
            max_bound_total=settings.max_schema_bound_total,
            max_depth=settings.max_schema_depth,
            max_bytes=settings.max_schema_bytes,
        )

    async def gguf_info(self, model: ModelFile) -> GgufInfo:
        return await asyncio.to_thread(self.metadata.read, model.path)

    def keep_alive(self, value: str | float | None) -> float:
        try:
            return parse_keep_alive(value, self.settings.keep_alive)
        except DurationError as exc:
            raise InvalidRequest(str(exc)) from exc

    async def num_ctx(self, model: ModelFile, options: Options | None) -> int:
        """The requested context size, clamped (as Ollama does) to the trained one and to RUNTIME_MAX_CTX."""
        requested = options.num_ctx if options is not None and options.num_ctx else self.settings.num_ctx
        trained = context_length((await self.gguf_info(model)).metadata)
        return min(requested, self.settings.max_ctx, trained or requested)

    def sampling(self, options: Options | None) -> Sampling:
        """The request's sampling with num_predict capped; Ollama's -1 (no limit) and -2 (fill the context)
        both run until the context is full here, as this runtime never shifts its context."""
        sampling = sampling_from(options)
        cap = self.settings.max_predict
        if sampling.num_predict < 0:
            sampling.num_predict = -1 if cap is None else cap
        elif cap is not None:
            sampling.num_predict = min(sampling.num_predict, cap)
        return sampling

    def check_schemas(self, fmt: str | dict[str, Any] | None, format_field: str, tools: list[ToolSpec]) -> None:
        if isinstance(fmt, dict):
            check_schema(fmt, format_field, self.schema_limits)
        for tool in tools:
            check_schema(tool.parameters, f"tools[{tool.name}].function.parameters", self.schema_limits)

    async def grammars(self, fmt: str | dict[str, Any] | None, tools: list[ToolSpec]) -> tuple[str | None, str | None]:
        """The format and tool grammars, built in a thread under RUNTIME_GRAMMAR_TIMEOUT. A grammar llama.cpp
        cannot parse is refused by the runner before it generates anything (a 400 as well)."""
        if not fmt and not tools:
            return None, None
        timeout = self.settings.grammar_timeout

        def build() -> tuple[str | None, str | None]:
            return format_grammar(fmt), tool_grammar(tools) if tools else None

        try:
            async with asyncio.timeout(timeout):
                return await asyncio.to_thread(build)
        except TimeoutError as exc:
            raise InvalidRequest(f"JSON schema too complex: its grammar took over {timeout:g}s to build") from exc

    async def load(self, model_name: str, options: Options | None, keep_alive: str | float | None) -> float:
        """Ollama's empty request: load the model (unload with keep_alive 0); the keep-alive in seconds."""
        seconds = self.keep_alive(keep_alive)
        model = self.catalog.resolve(model_name)
        await self.pool.load(model.name, await self.num_ctx(model, with_params(model.params, options)), seconds)
        return seconds

    async def prepare_chat(
        self,
        model_name: str,
        turns: list[ChatTurn],
        tools: list[ToolSpec],
        options: Options | None,
        fmt: str | dict[str, Any] | None,
        keep_alive: str | float | None,
        tool_mode: ToolMode = "auto",
        format_field: str = "format",
    ) -> Prepared:
        started = time.perf_counter()
        model = self.catalog.resolve(model_name)
        options, turns = with_params(model.params, options), with_system(model, turns)
        self.check_schemas(fmt, format_field, tools)
        keep_alive_seconds = self.keep_alive(keep_alive)
        # After a tool result the model answers in text; offering the tools again makes small
        # models repeat the call they just made.
        after_tool_result = bool(turns) and turns[-1].role == "tool"
        offered = [] if tool_mode == "none" or after_tool_result else tools
        grammar, calls_grammar = await self.grammars(fmt, offered)
        if after_tool_result and grammar is None:
            grammar = NO_TOOL_CALL_GRAMMAR
        prompt = await self.render(model, turns, offered)
        job = Generation(
            prompt=prompt,
            sampling=self.sampling(options),
            grammar=grammar,
            tool_grammar=calls_grammar,
            tools_required=tool_mode == "required",
        )
        num_ctx = await self.num_ctx(model, options)
        return Prepared(model, job, num_ctx, keep_alive_seconds, started, self.pool.admit(model))

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
            options = with_params(model.params, options)
            self.check_schemas(fmt, "format", [])
            keep_alive_seconds = self.keep_alive(keep_alive)
            grammar, _ = await self.grammars(fmt, [])
            job = Generation(prompt=prompt, sampling=self.sampling(options), grammar=grammar)
            num_ctx = await self.num_ctx(model, options)
            return Prepared(model, job, num_ctx, keep_alive_seconds, started, self.pool.admit(model))
        turns = ([ChatTurn("system", system)] if system else []) + [ChatTurn("user", prompt)]
        return await self.prepare_chat(model_name, turns, [], options, fmt, keep_alive)

    async def render(self, model: ModelFile, turns: list[ChatTurn], tools: list[ToolSpec]) -> str:
        """The GGUF's own chat template; else the manifest's Go template in a form this runtime reads (a clear
        400 when it is not); else ChatML."""
        info = await self.gguf_info(model)
        template = info.metadata.get("tokenizer.chat_template")
        if template is None and model.template:
            try:
                go_template = compile_template(model.template)
            except TemplateUnsupported as exc:
                raise InvalidRequest(
                    f"template of model '{model.name}' cannot be used: {exc} (the GGUF has no chat template and "
                    "this runtime reads only the common forms of Ollama's Go templates)"
                ) from exc
            return render_go_chat(turns, tools, go_template)
        return render_chat(turns, tools, template, info.bos_token, info.eos_token)

    async def run(self, prepared: Prepared) -> AsyncIterator[Event]:
        """Text pieces, or one ToolCalls when the model chose to call tools, then the Completion."""
        job = prepared.job
        buffered: list[str] = []
        async for event in self.pool.generate(
            prepared.model, job, prepared.num_ctx, prepared.keep_alive, prepared.started, prepared.admission
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
