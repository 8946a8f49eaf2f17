"""Loaded models, each on a runner of its own: started on first use, kept for keep_alive, replaced when its
num_ctx changes or it dies, unloaded when idle or when another model needs the memory (as Ollama's scheduler).

A model has a runner per mode: one generating text, and one in llama-server's embedding mode when it is asked
for embeddings; both obey the same memory, queue and keep-alive rules."""

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import psutil

from local_runtime.catalog import Catalog, ModelFile
from local_runtime.details import MetadataCache
from local_runtime.engine import Engine, Finish, Generation
from local_runtime.errors import InvalidRequest, NotEnoughMemory, QueueFull
from local_runtime.ggufmeta import kv_cache_bytes
from local_runtime.runner import Runner, RunnerSpec

log = logging.getLogger("local_runtime.pool")

# How often idle runners are checked for an expired keep-alive.
REAP_INTERVAL = 1.0
# What a 503 for a full queue tells the client; LiteLLM meanwhile tries another runtime.
RETRY_AFTER_SECONDS = 2
# Compute buffers and the process itself, beyond the weights and the KV cache.
RUNNER_OVERHEAD_BYTES = 128 * 1024 * 1024
# An embedding runner for a GGUF that names no pooling (a chat model): its last token's state, as Ollama's
# runners returned for such models.
DEFAULT_EMBEDDING_POOLING = "last"

Mode = Literal["generate", "embed"]


def is_embedding_only(metadata: dict[str, str]) -> bool:
    return f"{metadata.get('general.architecture', '')}.pooling_type" in metadata


@dataclass
class Completion:
    """The end of a generation, with timings in nanoseconds."""

    finish: Finish
    load_duration: int
    total_duration: int


@dataclass
class Slot:
    """One model name in one mode and the runner serving it."""

    model: ModelFile
    mode: Mode = "generate"
    engine: Engine | None = None
    expires_at: datetime | None = None
    # Requests admitted and not finished (generating on the runner or waiting for it).
    admitted: int = 0
    # Requests on the current runner; a runner is replaced or unloaded only when none are.
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)
    # Held while the runner is started, replaced or stopped; `idle` is notified when `active` drops to 0.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    idle: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def runner(self) -> Runner | None:
        return self.engine.runner if self.engine is not None else None


class Admission:
    """A request's place in its model's queue, held from before the response starts until its generation ends."""

    def __init__(self, slot: Slot) -> None:
        self._slot = slot
        self._held = True
        slot.admitted += 1

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slot.admitted -= 1

    def __del__(self) -> None:
        # A response cancelled before its body started never runs the generator that would release it.
        self.release()


class ModelPool:
    def __init__(
        self,
        catalog: Catalog,
        metadata: MetadataCache,
        binary: Path,
        threads: int,
        parallel: int,
        tool_call_bias: float,
        max_queue: int,
        load_timeout: float,
    ) -> None:
        self.catalog = catalog
        self.metadata = metadata
        self.binary = binary
        self.threads = threads
        self.parallel = parallel
        self.tool_call_bias = tool_call_bias
        self.max_queue = max_queue
        self.load_timeout = load_timeout
        self._slots: dict[tuple[str, Mode], Slot] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        await asyncio.gather(*(self._unload(slot) for slot in self._slots.values()))

    def loaded(self) -> list[Slot]:
        return [slot for slot in self._slots.values() if slot.runner is not None and slot.runner.alive]

    def busy(self, name: str) -> int:
        """Requests admitted on any of the model's runners, loaded or still loading, running or waiting."""
        return sum(slot.admitted for slot in self._slots.values() if slot.model.name == name)

    def admit(self, model: ModelFile, mode: Mode = "generate") -> Admission:
        """A place in the model's queue, or QueueFull when every slot is busy and `max_queue` requests wait.

        An embedding-only model (its GGUF names a pooling, as Ollama decides) cannot generate: a 400."""
        if mode == "generate" and is_embedding_only(self.metadata.read(model.path).metadata):
            raise InvalidRequest(f'"{model.name}" does not support generate or chat: it is an embedding model')
        slot = self._slot(model, mode)
        if slot.admitted >= self.parallel + self.max_queue:
            raise QueueFull(model.name, RETRY_AFTER_SECONDS)
        return Admission(slot)

    def _slot(self, model: ModelFile, mode: Mode = "generate") -> Slot:
        slot = self._slots.get((model.name, mode))
        if slot is None or slot.model.path != model.path:
            slot = self._slots[model.name, mode] = Slot(model, mode)
        return slot

    async def _ensure_runner(self, slot: Slot, num_ctx: int) -> tuple[Engine, int]:
        """The slot's engine on a live runner of this num_ctx, and the nanoseconds spent starting it now.

        A runner of another num_ctx is replaced once its requests are done (Ollama reloads too); a dead
        one at once."""
        async with slot.lock:
            engine = slot.engine
            if engine is not None and engine.runner.alive and engine.runner.spec.num_ctx == num_ctx:
                return engine, 0
            if engine is not None and engine.runner.alive:
                async with slot.idle:
                    await slot.idle.wait_for(lambda: slot.active == 0)
            await self._unload(slot)
            info = self.metadata.read(slot.model.path)
            parallel = await self._make_room(slot, info.metadata, num_ctx)
            spec = RunnerSpec(self.binary, slot.model.path, num_ctx, parallel, self.threads)
            name = slot.model.name
            if slot.mode == "embed":
                pooling = None if is_embedding_only(info.metadata) else DEFAULT_EMBEDDING_POOLING
                spec = dataclasses.replace(spec, embedding=True, pooling=pooling)
                name = f"{name} (embeddings)"
            runner = Runner(name, spec)
            await runner.start(self.load_timeout)
            slot.engine = Engine(runner, info, self.tool_call_bias)
            return slot.engine, runner.load_duration

    def _needs(self, model: ModelFile, metadata: dict[str, str], num_ctx: int, parallel: int) -> int:
        return model.size + kv_cache_bytes(metadata, num_ctx * parallel) + RUNNER_OVERHEAD_BYTES

    async def _make_room(self, slot: Slot, metadata: dict[str, str], num_ctx: int) -> int:
        """How many slots the new runner gets: RUNTIME_NUM_PARALLEL, fewer when memory is short, after
        unloading idle runners of other models, least recently used first, as long as that helps."""
        while True:
            available = psutil.virtual_memory().available
            for parallel in range(self.parallel, 0, -1):
                if self._needs(slot.model, metadata, num_ctx, parallel) <= available:
                    if parallel < self.parallel:
                        log.warning("memory is short: %s gets %d slots", slot.model.name, parallel)
                    return parallel
            idle = sorted(
                (other for other in self.loaded() if other is not slot and other.active == 0),
                key=lambda other: other.last_used,
            )
            if not idle:
                need = self._needs(slot.model, metadata, num_ctx, 1)
                raise NotEnoughMemory(
                    f"model '{slot.model.name}' needs about {need / 2**30:.1f} GiB of memory to load, "
                    f"{available / 2**30:.1f} GiB is available"
                )
            log.info("unloading %s to make room for %s", idle[0].model.name, slot.model.name)
            await self._unload(idle[0])

    async def _unload(self, slot: Slot) -> None:
        engine, slot.engine, slot.expires_at = slot.engine, None, None
        if engine is not None:
            was_alive = engine.runner.alive
            await engine.runner.stop()
            if was_alive:
                log.info("unloaded %s", slot.model.name)

    def _expire_after(self, slot: Slot, keep_alive: float) -> None:
        slot.last_used = time.monotonic()
        if math.isinf(keep_alive):
            slot.expires_at = datetime.max.replace(tzinfo=UTC)
        else:
            slot.expires_at = datetime.now(UTC) + timedelta(seconds=keep_alive)

    async def _reap_idle(self) -> None:
        now = datetime.now(UTC)
        for slot in list(self._slots.values()):
            runner = slot.runner
            if runner is None or slot.lock.locked() or slot.active:
                continue
            if not runner.alive or (slot.expires_at is not None and slot.expires_at <= now):
                await self._unload_if_idle(slot, runner)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL)
            try:
                await self._reap_idle()
            except Exception:
                log.exception("reaping idle runners failed")

    async def load(self, name: str, num_ctx: int, keep_alive: float, mode: Mode = "generate") -> None:
        """Ollama's empty request: load (or, with keep_alive 0, unload every runner of it) without generating."""
        model = self.catalog.resolve(name)
        if keep_alive <= 0:  # `ollama stop` unloads an embedding model too, as Ollama does before any check
            for each in [other for other in self._slots.values() if other.model.name == model.name]:
                await self._unload_when_done(each)
            return
        admission = self.admit(model, mode)
        slot = self._slot(model, mode)
        try:
            await self._ensure_runner(slot, num_ctx)
            self._expire_after(slot, keep_alive)
        finally:
            admission.release()

    async def generate(
        self,
        model: ModelFile,
        job: Generation,
        num_ctx: int,
        keep_alive: float,
        started: float,
        admission: Admission,
    ) -> AsyncIterator[str | Completion]:
        """Text pieces as the model produces them, then one Completion.

        Requests beyond the runner's slots wait in llama-server's own queue, in arrival order. A consumer
        that goes away closes this iterator, which closes the runner's stream and frees its slot."""
        slot = self._slot(model)
        counted = False
        try:
            engine, load_ns = await self._ensure_runner(slot, num_ctx)
            slot.active += 1
            counted = True
            self._expire_after(slot, keep_alive)  # listed by /api/ps while it answers
            async for event in engine.generate(job):
                if isinstance(event, Finish):
                    completion = Completion(event, load_ns, int((time.perf_counter() - started) * 1e9))
                    counted = False
                    await self._finished(slot, keep_alive, admission)
                    yield completion
                    return
                yield event
        finally:
            if counted:
                await self._finished(slot, keep_alive, admission)
            admission.release()

    @asynccontextmanager
    async def serving(
        self, model: ModelFile, mode: Mode, num_ctx: int, keep_alive: float, admission: Admission
    ) -> AsyncIterator[tuple[Engine, int]]:
        """The model's engine in `mode` on a live runner, and the nanoseconds spent loading it, held for the
        body of the `async with` (a non-streaming request: embeddings)."""
        slot = self._slot(model, mode)
        counted = False
        try:
            engine, load_ns = await self._ensure_runner(slot, num_ctx)
            slot.active += 1
            counted = True
            self._expire_after(slot, keep_alive)
            yield engine, load_ns
        finally:
            if counted:
                await self._finished(slot, keep_alive, admission)
            admission.release()

    async def _finished(self, slot: Slot, keep_alive: float, admission: Admission) -> None:
        """A request is done with its runner (before its last event is handed on, so a client that has
        the answer finds the model's queue already moved on); keep_alive 0 unloads an idle runner."""
        admission.release()
        slot.active -= 1
        self._expire_after(slot, keep_alive)
        if slot.active == 0:
            async with slot.idle:
                slot.idle.notify_all()
            if keep_alive <= 0:
                task = asyncio.create_task(self._unload_if_idle(slot))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _unload_when_done(self, slot: Slot) -> None:
        """Unload the slot's runner once the requests on it are done."""
        async with slot.lock:
            async with slot.idle:
                await slot.idle.wait_for(lambda: slot.active == 0)
            await self._unload(slot)

    async def _unload_if_idle(self, slot: Slot, runner: Runner | None = None) -> None:
        """Unload the slot's runner (only `runner`, when given) unless a request came for it meanwhile."""
        async with slot.lock:
            if slot.active == 0 and (runner is None or slot.runner is runner):
                await self._unload(slot)
