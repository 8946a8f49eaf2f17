"""One generation on a runner: the prompt as tokens, the tool-call choice, and llama-server's token stream."""

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from local_runtime.errors import InvalidRequest, RunnerFailed
from local_runtime.ggufmeta import GgufInfo
from local_runtime.prompting import TOOL_CALL_OPEN
from local_runtime.runner import Runner

log = logging.getLogger("local_runtime.engine")

# The numbers Ollama uses when a request leaves an option out.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_K = 40
DEFAULT_TOP_P = 0.9
DEFAULT_REPEAT_PENALTY = 1.1
DEFAULT_REPEAT_LAST_N = 64
# How long a request whose runner cut its connection waits to learn how the runner ended.
DEATH_GRACE_SECONDS = 0.5


@dataclass
class Sampling:
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = DEFAULT_TOP_K
    top_p: float = DEFAULT_TOP_P
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_penalty: float = DEFAULT_REPEAT_PENALTY
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    # -1: until the context is full, as in Ollama.
    num_predict: int = -1
    stop: list[str] = field(default_factory=list)


@dataclass
class Generation:
    """What to generate."""

    prompt: str
    sampling: Sampling = field(default_factory=Sampling)
    # Constrains a text answer (Ollama's `format`).
    grammar: str | None = None
    # When set the model may call tools instead; `tools_required` forbids a text answer.
    tool_grammar: str | None = None
    tools_required: bool = False
    # Set before the first piece of text: the output is a tool call, not an answer.
    calls_tools: bool = False


@dataclass
class Finish:
    """How a generation ended, with llama.cpp's own counters (durations in nanoseconds)."""

    done_reason: str
    prompt_eval_count: int
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int


async def runner_error(runner: Runner, exc: Exception | None = None) -> RunnerFailed:
    """The 503 for requests a runner left: it died (and why), or it stopped answering. A cut connection is
    usually its death seen first, so the process gets a moment to be reaped and say how it ended."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DEATH_GRACE_SECONDS):
            await runner.died.wait()
    if runner.died.is_set():
        return RunnerFailed(f"model runner for '{runner.name}' stopped unexpectedly ({runner.death}); try again")
    detail = f": {type(exc).__name__}" if exc is not None else ""
    return RunnerFailed(f"model runner for '{runner.name}' failed to answer{detail}; try again")


def refusal(status: int, body: bytes) -> Exception:
    """A runner's 4xx for a request the runtime let through: the runner's reason, as the client's error."""
    try:
        message = str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = body.decode("utf-8", errors="replace")[:200]
    if "grammar" in message.lower():
        return InvalidRequest("JSON schema too complex: llama.cpp cannot parse its grammar")
    if status == 400:
        return InvalidRequest(message)
    return RuntimeError(f"runner answered {status}: {message}")


class Engine:
    """Generations for one model on its runner; `info` is the model's GGUF metadata."""

    def __init__(self, runner: Runner, info: GgufInfo, tool_call_bias: float) -> None:
        self.runner = runner
        self.info = info
        self.tool_call_bias = tool_call_bias
        self._tool_opener: int | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        client = self.runner.client
        assert client is not None
        try:
            async with client.post(path, json=body) as response:
                content = await response.read()
        except aiohttp.ClientError as exc:
            raise await runner_error(self.runner, exc) from exc
        if response.status != 200:
            raise refusal(response.status, content)
        return json.loads(content)

    async def tokenize(self, text: str, add_special: bool) -> list[int]:
        """The model's tokens for `text`, special tokens parsed (as llama.cpp tokenizes a rendered template)."""
        reply = await self._post("/tokenize", {"content": text, "add_special": add_special, "parse_special": True})
        return [int(token) for token in reply["tokens"]]

    async def prompt_tokens(self, prompt: str) -> list[int]:
        add_bos = self.info.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
        if add_bos and self.info.bos_token and prompt.startswith(self.info.bos_token):
            add_bos = False  # the chat template already wrote it
        return await self.tokenize(prompt, add_bos)

    async def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        """One vector per tokenized input, pooled as the runner was started, not normalized (an embedding runner)."""
        reply = await self._post("/v1/embeddings", {"input": inputs, "encoding_format": "float", "embd_normalize": -1})
        rows = sorted(reply["data"], key=lambda row: int(row["index"]))
        return [[float(value) for value in row["embedding"]] for row in rows]

    async def tool_opener(self) -> int:
        if self._tool_opener is None:
            self._tool_opener = (await self.tokenize(TOOL_CALL_OPEN, False))[0]
        return self._tool_opener

    async def prefers_tool_call(self, tokens: list[int]) -> bool:
        """Whether the model's first token, with the tool-call opener boosted, starts a call.

        Small models rate a tool call plausible (it stands out against unrelated questions) but rarely most
        likely, so the opener's logit gets `tool_call_bias` before the comparison: one greedy token with that
        bias and no other sampler. The prompt stays in the slot's cache for the generation that follows.
        """
        opener = await self.tool_opener()
        reply = await self._post(
            "/completion",
            {
                "prompt": tokens,
                "n_predict": 1,
                "samplers": ["top_k"],
                "top_k": 1,
                "temperature": 0,
                "repeat_penalty": 1.0,
                "logit_bias": [[opener, self.tool_call_bias]],
                "return_tokens": True,
                "cache_prompt": True,
            },
        )
        return list(reply.get("tokens") or [])[:1] == [opener]

    def _request(self, job: Generation, tokens: list[int], limit: int, grammar: str | None) -> dict[str, Any]:
        sampling = job.sampling
        return {
            "prompt": tokens,
            "stream": True,
            "n_predict": limit,
            "temperature": sampling.temperature,
            "top_k": sampling.top_k,
            "top_p": sampling.top_p,
            "min_p": sampling.min_p,
            "typical_p": sampling.typical_p,
            "repeat_penalty": sampling.repeat_penalty,
            "repeat_last_n": DEFAULT_REPEAT_LAST_N,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty,
            "seed": sampling.seed if sampling.seed is not None else random.randrange(2**31),
            "stop": sampling.stop,
            **({"grammar": grammar} if grammar else {}),
            # A seeded request is evaluated from scratch, so it answers the same whatever ran before it on
            # its slot; others reuse the slot's cached prefix (a follow-up turn skips the conversation so far).
            "cache_prompt": sampling.seed is None,
            "timings_per_token": False,
        }

    async def generate(self, job: Generation) -> AsyncIterator[str | Finish]:
        """Text pieces as the runner produces them, then one Finish. Closing the iterator closes the stream,
        and llama-server stops that slot's generation when its client goes away."""
        num_ctx = self.runner.spec.num_ctx
        tokens = await self.prompt_tokens(job.prompt)
        if not tokens:
            yield Finish("stop", 0, 0, 0, 0)
            return
        if len(tokens) >= num_ctx:
            keep = num_ctx * 3 // 4
            log.warning("prompt of %d tokens exceeds num_ctx %d; keeping the last %d", len(tokens), num_ctx, keep)
            tokens = tokens[-keep:]
        room = num_ctx - len(tokens)
        limit = room if job.sampling.num_predict < 0 else min(job.sampling.num_predict, room)
        if limit <= 0:
            yield Finish("length", len(tokens), 0, 0, 0)
            return
        grammar = job.grammar
        if job.tool_grammar is not None and (job.tools_required or await self.prefers_tool_call(tokens)):
            job.calls_tools = True
            grammar = job.tool_grammar
        async for event in self._stream(self._request(job, tokens, limit, grammar), len(tokens)):
            yield event

    async def _stream(self, body: dict[str, Any], prompt_count: int) -> AsyncIterator[str | Finish]:
        client = self.runner.client
        assert client is not None
        try:
            async with client.post("/completion", json=body) as response:
                if response.status != 200:
                    raise refusal(response.status, await response.read())
                async for line in response.content:
                    if not line.startswith(b"data: "):
                        continue
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        raise RunnerFailed(f"model runner error: {chunk['error'].get('message', chunk['error'])}")
                    if chunk.get("content"):
                        yield str(chunk["content"])
                    if chunk.get("stop"):
                        timings = chunk.get("timings") or {}
                        yield Finish(
                            done_reason="length" if chunk.get("stop_type") == "limit" else "stop",
                            prompt_eval_count=prompt_count,
                            prompt_eval_duration=int(float(timings.get("prompt_ms", 0)) * 1e6),
                            eval_count=int(chunk.get("tokens_predicted", timings.get("predicted_n", 0))),
                            eval_duration=int(float(timings.get("predicted_ms", 0)) * 1e6),
                        )
                        return
        except aiohttp.ClientError as exc:
            raise await runner_error(self.runner, exc) from exc
        raise await runner_error(self.runner)  # the stream ended without its last chunk
