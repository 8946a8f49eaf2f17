"""Loaded models: one generation at a time per model, keep-alive expiry, reload on num_ctx change."""

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from local_runtime.catalog import Catalog, ModelFile
from local_runtime.engine import Finish, Generation, LoadedModel
from local_runtime.errors import ModelLoadFailed, QueueFull

log = logging.getLogger("local_runtime.pool")

# How often idle models are checked for an expired keep-alive.
REAP_INTERVAL = 1.0
# What a 503 for a full queue tells the client; LiteLLM meanwhile tries the other runtime.
RETRY_AFTER_SECONDS = 2


@dataclass
class Completion:
    """The end of a generation, with timings in nanoseconds."""

    finish: Finish
    load_duration: int
    total_duration: int


@dataclass
class Slot:
    """One model name: its lock queues requests in arrival order (asyncio.Lock is FIFO)."""

    model: ModelFile
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    loaded: LoadedModel | None = None
    expires_at: datetime | None = None
    # Requests admitted and not finished: the one generating and those waiting for the lock.
    admitted: int = 0


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
    def __init__(self, catalog: Catalog, threads: int, tool_call_bias: float, max_queue: int) -> None:
        self.catalog = catalog
        self.threads = threads
        self.tool_call_bias = tool_call_bias
        self.max_queue = max_queue
        self._slots: dict[str, Slot] = {}
        # Generations of different models may overlap; one model's never do (its lock).
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llama")
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)
        for slot in self._slots.values():
            self._unload(slot)

    def loaded(self) -> list[Slot]:
        return [slot for slot in self._slots.values() if slot.loaded is not None]

    def admit(self, model: ModelFile) -> Admission:
        """A place in the model's queue, or QueueFull when `max_queue` requests already wait behind the running one."""
        slot = self._slot(model)
        if slot.admitted > self.max_queue:
            raise QueueFull(model.name, RETRY_AFTER_SECONDS)
        return Admission(slot)

    def _slot(self, model: ModelFile) -> Slot:
        slot = self._slots.get(model.name)
        if slot is None or slot.model.path != model.path:
            slot = self._slots[model.name] = Slot(model)
        return slot

    async def _ensure_loaded(self, slot: Slot, num_ctx: int) -> tuple[LoadedModel, int]:
        """The loaded model (holding slot.lock) and nanoseconds spent loading it now."""
        if slot.loaded is not None and slot.loaded.num_ctx == num_ctx:
            return slot.loaded, 0
        self._unload(slot)  # a different num_ctx needs a new context, as in Ollama
        path, threads, bias = slot.model.path, self.threads, self.tool_call_bias
        loop = asyncio.get_running_loop()
        try:
            loaded = await loop.run_in_executor(self._executor, lambda: LoadedModel(path, num_ctx, threads, bias))
        except Exception as exc:
            log.error("loading %s from %s failed: %s", slot.model.name, path, exc)
            raise ModelLoadFailed(f"failed to load model '{slot.model.name}': {exc}") from exc
        slot.loaded = loaded
        log.info("loaded %s (num_ctx %d) in %.2fs", slot.model.name, num_ctx, loaded.load_duration / 1e9)
        return loaded, loaded.load_duration

    def _unload(self, slot: Slot) -> None:
        if slot.loaded is not None:
            slot.loaded.close()
            slot.loaded = None
            slot.expires_at = None
            log.info("unloaded %s", slot.model.name)

    def _expire_after(self, slot: Slot, keep_alive: float) -> None:
        if math.isinf(keep_alive):
            slot.expires_at = datetime.max.replace(tzinfo=UTC)
        else:
            slot.expires_at = datetime.now(UTC) + timedelta(seconds=keep_alive)
        if keep_alive <= 0:
            self._reap_idle()

    def _reap_idle(self) -> None:
        now = datetime.now(UTC)
        for slot in self._slots.values():
            if slot.loaded is not None and not slot.lock.locked() and slot.expires_at and slot.expires_at <= now:
                self._unload(slot)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL)
            self._reap_idle()

    async def load(self, name: str, num_ctx: int, keep_alive: float) -> None:
        """Ollama's empty request: load (or, with keep_alive 0, unload) without generating."""
        model = self.catalog.resolve(name)
        admission = self.admit(model)
        slot = self._slot(model)
        try:
            async with slot.lock:
                if keep_alive <= 0:
                    self._unload(slot)
                    return
                await self._ensure_loaded(slot, num_ctx)
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

        The lock is released only when the worker thread has really finished, even when the
        consumer goes away mid-stream, so two outputs can never interleave on one model.
        """
        slot = self._slot(model)
        try:
            await slot.lock.acquire()  # outside the main try: a request cancelled while queued holds no lock
        except BaseException:
            admission.release()
            raise
        handed_over = False
        try:
            loaded, load_ns = await self._ensure_loaded(slot, num_ctx)
            loop = asyncio.get_running_loop()
            pieces: asyncio.Queue[str | None] = asyncio.Queue()

            def emit(text: str) -> None:
                loop.call_soon_threadsafe(pieces.put_nowait, text)

            def work() -> Finish:
                try:
                    return loaded.generate(job, emit)
                finally:
                    loop.call_soon_threadsafe(pieces.put_nowait, None)

            future = loop.run_in_executor(self._executor, work)

            def release(_: object) -> None:
                slot.lock.release()
                admission.release()
                self._expire_after(slot, keep_alive)  # after release: keep_alive 0 unloads an idle model

            future.add_done_callback(release)
            handed_over = True
            while (piece := await pieces.get()) is not None:
                yield piece
            finish = await future
            yield Completion(finish, load_ns, int((time.perf_counter() - started) * 1e9))
        finally:
            job.cancel.set()  # stops the worker at its next token if the consumer left early
            if not handed_over:
                slot.lock.release()
                admission.release()
