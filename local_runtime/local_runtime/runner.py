"""One llama.cpp `llama-server` process serving one model, as Ollama runs a runner per loaded model.

The runner listens on a private loopback port with an API key of its own (passed in its environment, never
on its command line), so only this runtime reaches it and every request passes the runtime's limits first.
It has `parallel` slots of `num_ctx` tokens each and batches them continuously. A runner that dies is
noticed at once (its process is awaited); the log says how it ended and what it printed last.
"""

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

from local_runtime.errors import ModelLoadFailed

log = logging.getLogger("local_runtime.runner")

# What a runner printed last is kept for the log line that says why it died.
TAIL_LINES = 20
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class RunnerSpec:
    """What a runner is started with; a request needing another num_ctx needs another runner."""

    binary: Path
    model_path: Path
    num_ctx: int  # per slot
    parallel: int
    threads: int
    batch: int = 512
    # An embedding runner (llama-server --embedding): every input is one batch, pooled as `pooling` says
    # (None: as the GGUF says).
    embedding: bool = False
    pooling: str | None = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the runner's process before exec: the kernel kills it when the runtime ends, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class Runner:
    """A started llama-server; `client` talks to it, `died` is set when its process ends."""

    def __init__(self, name: str, spec: RunnerSpec) -> None:
        self.name = name
        self.spec = spec
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.client: aiohttp.ClientSession | None = None
        self.died = asyncio.Event()
        self.death: str | None = None  # why it ended, for the requests it leaves
        self.load_duration = 0  # nanoseconds
        self._stopping = False
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.process is not None and not self.died.is_set()

    def argv(self) -> list[str]:
        spec = self.spec
        return [
            str(spec.binary),
            "--model", str(spec.model_path),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            # Each slot gets the whole num_ctx the request asked for, as Ollama sizes its runners.
            "--ctx-size", str(spec.num_ctx * spec.parallel),
            "--parallel", str(spec.parallel),
            "--no-kv-unified",
            "--cont-batching",
            "--threads", str(spec.threads),
            "--threads-batch", str(spec.threads),
            "--batch-size", str(self.batch_size()),
            "--threads-http", str(max(4, spec.parallel + 2)),
            # The runtime decides what is cached and for how long; no prompt cache in host memory on top.
            "--cache-ram", "0",
            "--no-context-shift",
            "--no-webui",
            "--no-warmup",
            "--log-verbosity", "3",
            "--log-colors", "off",
            *self.embedding_args(),
        ]  # fmt: skip

    def batch_size(self) -> int:
        # An embedding runner sees a whole input at once: a slot's num_ctx must fit in one physical batch.
        return self.spec.num_ctx if self.spec.embedding else min(self.spec.batch, self.spec.num_ctx)

    def embedding_args(self) -> list[str]:
        spec = self.spec
        if not spec.embedding:
            return []
        args = ["--embedding", "--ubatch-size", str(spec.num_ctx)]
        return args + (["--pooling", spec.pooling] if spec.pooling else [])

    async def start(self, timeout: float) -> None:
        """Start the process and wait until the model is loaded; ModelLoadFailed says why it is not."""
        started = time.perf_counter()
        key = secrets.token_urlsafe(24)
        for attempt in range(3):  # a free port may be taken between the probe and the bind
            self.port = free_port()
            env = {**os.environ, "LLAMA_API_KEY": key}
            self.process = await asyncio.create_subprocess_exec(
                *self.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                # Its own session: a Ctrl-C to the runtime's terminal leaves the runtime to stop its runners.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            self.died = asyncio.Event()
            self._tasks = [asyncio.create_task(self._read_output()), asyncio.create_task(self._watch())]
            # aiohttp, not httpx: relaying a stream costs this process a third less CPU per token (measured), and
            # every bit of it is taken from the runner's threads on a small machine.
            self.client = aiohttp.ClientSession(
                base_url=f"http://127.0.0.1:{self.port}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=aiohttp.ClientTimeout(total=None, connect=5.0),
                connector=aiohttp.TCPConnector(limit=0),
            )
            problem = await self._wait_ready(timeout - (time.perf_counter() - started))
            if problem is None:
                self.load_duration = int((time.perf_counter() - started) * 1e9)
                log.info(
                    "runner for %s started (pid %s, port %d, %d slots of %d tokens, %d threads) in %.2fs",
                    self.name, self.pid, self.port, self.spec.parallel, self.spec.num_ctx, self.spec.threads,
                    self.load_duration / 1e9,
                )  # fmt: skip
                return
            await self.stop()
            if "bind" in problem.lower() and attempt < 2:
                continue
            raise ModelLoadFailed(f"failed to load model '{self.name}': {problem}")

    async def _wait_ready(self, timeout: float) -> str | None:
        assert self.client is not None
        deadline = time.perf_counter() + max(timeout, 1.0)
        while time.perf_counter() < deadline:
            if self.died.is_set():
                return f"llama-server {self.death}: {self.last_output()}"
            with contextlib.suppress(aiohttp.ClientError):
                async with self.client.get("/health") as response:
                    if response.status == 200:
                        return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await self.died.wait()
        return f"llama-server did not load it within {timeout:.0f}s"

    async def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip()
            if line:
                self._tail.append(line)
                log.debug("runner %s: %s", self.name, line)

    async def _watch(self) -> None:
        assert self.process is not None
        returncode = await self.process.wait()
        self.death = exit_reason(returncode)
        self.died.set()
        if not self._stopping:
            with contextlib.suppress(TimeoutError):  # let the pipe hand over its last lines
                async with asyncio.timeout(1.0):
                    await asyncio.shield(self._tasks[0])
            log.error(
                "runner for %s (pid %s) died: %s; its last output: %s",
                self.name, self.process.pid, self.death, self.last_output(),
            )  # fmt: skip

    def last_output(self) -> str:
        lines = [line for line in self._tail if line.strip()]
        return " | ".join(lines[-3:]) if lines else "(nothing)"

    def memory(self) -> int:
        """The runner's resident memory in bytes (weights it touched, KV cache, buffers)."""
        if not self.alive or self.pid is None:
            return 0
        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error:
            return 0

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; safe to call twice."""
        self._stopping = True
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                async with asyncio.timeout(grace):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(2.0):
                    await task
        if self.client is not None:
            await self.client.close()
