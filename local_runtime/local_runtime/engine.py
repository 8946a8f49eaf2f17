"""One loaded GGUF model and its token loop; synchronous, run in a worker thread."""

import ctypes
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import llama_cpp
import numpy as np
from llama_cpp import Llama, LlamaGrammar

from local_runtime.prompting import TOOL_CALL_OPEN
from local_runtime.textstream import TextStream

log = logging.getLogger("local_runtime.engine")


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
def _quiet_llama_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    """llama.cpp's C logs go to DEBUG; llama-cpp-python's own callback prints some errors raw."""
    log.debug("llama.cpp: %s", text.decode("utf-8", errors="replace").rstrip())


llama_cpp.llama_log_set(_quiet_llama_log, ctypes.c_void_p(0))

# The numbers Ollama uses when a request leaves an option out.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_K = 40
DEFAULT_TOP_P = 0.9
DEFAULT_REPEAT_PENALTY = 1.1
DEFAULT_REPEAT_LAST_N = 64


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
    """What to generate; `cancel` is checked before every token so a gone client frees the model."""

    prompt: str
    sampling: Sampling = field(default_factory=Sampling)
    # Constrains a text answer (Ollama's `format`).
    grammar: str | None = None
    # When set the model may call tools instead; `tools_required` forbids a text answer.
    tool_grammar: str | None = None
    tools_required: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    # Set by the engine before the first piece of text: the output is a tool call, not an answer.
    calls_tools: bool = False


@dataclass
class Finish:
    """How a generation ended, with llama.cpp's own counters (durations in nanoseconds)."""

    done_reason: str
    prompt_eval_count: int
    prompt_eval_duration: int
    eval_count: int
    eval_duration: int


@dataclass
class GgufInfo:
    metadata: dict[str, str]
    bos_token: str
    eos_token: str


def _token_text(llm: Llama, metadata: dict[str, str], key: str) -> str:
    token_id = metadata.get(f"tokenizer.ggml.{key}_token_id")
    if token_id is None:
        return ""
    return llm.detokenize([int(token_id)], special=True).decode("utf-8", errors="replace")


def read_gguf_info(path: Path) -> GgufInfo:
    """GGUF key/values and BOS/EOS text via llama.cpp, loading only the vocabulary (no weights)."""
    llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        metadata = dict(llm.metadata)
        return GgufInfo(metadata, _token_text(llm, metadata, "bos"), _token_text(llm, metadata, "eos"))
    finally:
        llm.close()


@lru_cache(maxsize=128)
def grammar_parses(grammar: str) -> bool:
    """Whether llama.cpp accepts a GBNF grammar; it answers NULL for one it refuses, which in a sampler
    chain would crash the generation. Parsing needs no vocabulary, so no model is involved."""
    sampler = llama_cpp.llama_sampler_init_grammar(None, grammar.encode("utf-8"), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


class LoadedModel:
    """A llama.cpp model and context sized for one num_ctx."""

    def __init__(self, path: Path, num_ctx: int, threads: int, tool_call_bias: float = 4.0) -> None:
        started = time.perf_counter()
        self.path = path
        self.num_ctx = num_ctx
        self.llama = Llama(
            model_path=str(path),
            n_ctx=num_ctx,
            n_batch=min(512, num_ctx),
            n_threads=threads,
            n_threads_batch=threads,
            last_n_tokens_size=DEFAULT_REPEAT_LAST_N,
            verbose=False,
        )
        self.metadata: dict[str, str] = dict(self.llama.metadata)
        self.tool_call_bias = tool_call_bias
        self._tool_opener = self.llama.tokenize(TOOL_CALL_OPEN.encode(), add_bos=False, special=True)[0]
        self.load_duration = int((time.perf_counter() - started) * 1e9)

    @property
    def chat_template(self) -> str | None:
        return self.metadata.get("tokenizer.chat_template")

    def tokenize(self, prompt: str) -> list[int]:
        add_bos = self.metadata.get("tokenizer.ggml.add_bos_token", "false") == "true"
        bos = _token_text(self.llama, self.metadata, "bos")
        if add_bos and bos and prompt.startswith(bos):
            add_bos = False  # the chat template already wrote it
        return list(self.llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True))

    def generate(self, job: Generation, emit: Callable[[str], None]) -> Finish:
        """Run one generation, calling `emit` with each piece of text as soon as it is final."""
        llm = self.llama
        tokens = self.tokenize(job.prompt)
        if not tokens:
            return Finish(
                done_reason="stop", prompt_eval_count=0, prompt_eval_duration=0, eval_count=0, eval_duration=0
            )
        if len(tokens) >= self.num_ctx:
            keep = self.num_ctx * 3 // 4
            log.warning("prompt of %d tokens exceeds num_ctx %d; keeping the last %d", len(tokens), self.num_ctx, keep)
            tokens = tokens[-keep:]
        room = self.num_ctx - len(tokens)
        limit = room if job.sampling.num_predict < 0 else min(job.sampling.num_predict, room)

        # Evaluating every prompt from scratch (no prefix reuse) keeps outputs independent of
        # what ran before, so a seeded request answers the same alone or in a queue.
        llm.reset()
        ctx = llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        sampling = job.sampling
        llm.set_seed(sampling.seed if sampling.seed is not None else random.randrange(2**31))
        grammar_text = job.grammar
        if job.tool_grammar is not None and (job.tools_required or self._prefers_tool_call(tokens)):
            job.calls_tools = True
            grammar_text = job.tool_grammar
        grammar = LlamaGrammar.from_string(grammar_text, verbose=False) if grammar_text else None
        stream = TextStream(sampling.stop)
        vocab = llm._model.vocab
        count = 0
        reason = "length" if limit <= 0 else "stop"
        tokens_out = llm.generate(
            tokens,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            typical_p=sampling.typical_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
            grammar=grammar,
        )
        try:
            while limit > 0 and not job.cancel.is_set():
                token = next(tokens_out)
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                count += 1
                text = stream.push(llm.detokenize([token]))
                if text:
                    emit(text)
                if stream.stopped:
                    break
                if count >= limit:
                    reason = "length"
                    break
        finally:
            tokens_out.close()
        tail = stream.flush()
        if tail:
            emit(tail)
        perf = llama_cpp.llama_perf_context(ctx)
        return Finish(
            done_reason=reason,
            prompt_eval_count=len(tokens),
            prompt_eval_duration=int(perf.t_p_eval_ms * 1e6),
            eval_count=count,
            eval_duration=int(perf.t_eval_ms * 1e6),
        )

    def _prefers_tool_call(self, tokens: list[int]) -> bool:
        """Whether the model's first token, with the tool-call opener boosted, starts a call.

        Small models rate a tool call plausible (it stands out against unrelated questions) but
        rarely most likely, so the opener's logit gets `tool_call_bias` before the comparison.
        The prompt evaluated here stays in the cache and generate() samples from it directly.
        """
        llm = self.llama
        llm.eval(tokens)
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
        opener = float(logits[self._tool_opener])
        others = float(np.max(np.delete(logits, self._tool_opener)))
        return opener + self.tool_call_bias >= others

    def close(self) -> None:
        self.llama.close()
