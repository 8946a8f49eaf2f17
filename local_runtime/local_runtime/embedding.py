"""Embeddings on a model's embedding runner: inputs tokenized, cut to the context as Ollama cuts them, pooled."""

import asyncio
import math
import time
from dataclasses import dataclass

from local_runtime.engine import Engine
from local_runtime.errors import InvalidRequest
from local_runtime.runtime import Runtime
from local_runtime.schemas import Options

# Inputs tokenized at once on the runner (its HTTP threads), for a request with many.
TOKENIZE_CONCURRENCY = 8


@dataclass
class Embedded:
    """Vectors in input order, with Ollama's counters (durations in nanoseconds)."""

    vectors: list[list[float]]
    prompt_eval_count: int
    load_duration: int
    total_duration: int


def normalized(vector: list[float]) -> list[float]:
    """L2-normalized, as Ollama's /api/embed returns vectors; NaN or Inf is an error, as there."""
    if not all(math.isfinite(value) for value in vector):
        raise InvalidRequest("embedding contains NaN or Inf values")
    norm = max(math.sqrt(sum(value * value for value in vector)), 1e-12)
    return [value / norm for value in vector]


def cut(tokens: list[int], limit: int, eos: int | None, truncate: bool, index: int) -> list[int]:
    """The input's tokens within `limit`: cut at the end keeping its closing special token (Ollama's
    truncate, the default), or a 400 with Ollama's text when truncate is false."""
    if len(tokens) <= limit:
        return tokens
    if not truncate:
        raise InvalidRequest(f"the input length exceeds the context length (input {index}: {len(tokens)} tokens)")
    if eos is not None and tokens[-1] == eos:
        return [*tokens[: limit - 1], eos]
    return tokens[:limit]


async def tokenize_all(engine: Engine, texts: list[str], limit: int, truncate: bool) -> list[list[int]]:
    metadata = engine.info.metadata
    eos_id = metadata.get("tokenizer.ggml.eos_token_id")
    eos = int(eos_id) if eos_id is not None and metadata.get("tokenizer.ggml.add_eos_token") == "true" else None
    gate = asyncio.Semaphore(TOKENIZE_CONCURRENCY)

    async def one(index: int, text: str) -> list[int]:
        async with gate:
            tokens = await engine.tokenize(text, add_special=True)
        if not tokens:
            raise InvalidRequest(f"input {index} is empty: the model adds no tokens to an empty text")
        return cut(tokens, limit, eos, truncate, index)

    return list(await asyncio.gather(*(one(index, text) for index, text in enumerate(texts))))


async def embed(
    runtime: Runtime,
    model_name: str,
    texts: list[str],
    *,
    truncate: bool = True,
    options: Options | None = None,
    keep_alive: str | float | None = None,
    normalize: bool = True,
    dimensions: int | None = None,
) -> Embedded:
    """Embeddings of `texts` from the model's embedding runner (started on first use); no texts only loads it."""
    started = time.perf_counter()
    limit = runtime.settings.max_embed_inputs
    if len(texts) > limit:
        raise InvalidRequest(f"too many inputs: {len(texts)}, at most {limit} per request")
    if dimensions is not None and dimensions < 1:
        raise InvalidRequest("dimensions must be a positive number")
    model = runtime.catalog.resolve(model_name)
    keep_alive_seconds = runtime.keep_alive(keep_alive)
    num_ctx = await runtime.num_ctx(model, options)
    admission = runtime.pool.admit(model, "embed")
    async with runtime.pool.serving(model, "embed", num_ctx, keep_alive_seconds, admission) as (engine, load_ns):
        tokens = await tokenize_all(engine, texts, num_ctx, truncate) if texts else []
        vectors = await engine.embed(tokens) if tokens else []
    if dimensions is not None:
        vectors = [vector[:dimensions] for vector in vectors]
    if normalize or dimensions is not None:
        vectors = [normalized(vector) for vector in vectors]
    total = int((time.perf_counter() - started) * 1e9)
    return Embedded(vectors, sum(len(each) for each in tokens), load_ns, total)
