"""What the LiteLLM proxy adds on top of the model runtime: latency per request, and streaming speed.

The same requests (fixed seed) go straight to the runtime's /v1/chat/completions and through the
proxy's, alternating so that load drift hits both alike. Defaults fit the `make up` stack:

    .venv/bin/python bench/proxy_bench.py [--proxy URL] [--runtime URL] [--key KEY] [--requests 200]

Note that the proxy spreads the smollm2:135m group over both runtimes (and speaks Ollama's
/api/chat to them), while the direct requests go to one runtime only.
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass

import httpx

PROMPTS = [
    "Say hi.",
    "Name a colour.",
    "What is 2 + 2?",
    "Give one word for happy.",
    "Name a fruit.",
    "Say yes or no.",
]


@dataclass
class StreamStats:
    ttft_s: float
    tokens: int
    generation_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.generation_s if self.generation_s > 0 else float("nan")


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    ram = "?"
    try:
        with open("/proc/meminfo") as info:
            kib = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
        ram = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {ram} RAM, Python {platform.python_version()}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def request_bodies(count: int, model: str, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [
        {
            "model": model,
            "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
            "max_tokens": rng.randint(1, 4),
            "temperature": 0,
            "seed": seed,
        }
        for _ in range(count)
    ]


def timed_post(client: httpx.Client, url: str, headers: dict[str, str], body: dict[str, object]) -> httpx.Response:
    response = client.post(url, headers=headers, json=body)
    response.raise_for_status()
    return response


def stream_once(client: httpx.Client, url: str, headers: dict[str, str], body: dict[str, object]) -> StreamStats:
    start = time.perf_counter()
    first = last = None
    tokens = 0
    with client.stream("POST", url, headers=headers, json={**body, "stream": True}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                now = time.perf_counter()
                first = first or now
                last = now
                tokens += 1  # one content chunk per generated token on both paths
    if first is None or last is None:
        raise RuntimeError("stream produced no content")
    return StreamStats(first - start, tokens, last - first)


def latency_row(label: str, values_ms: list[float]) -> None:
    print(f"| {label} | {statistics.median(values_ms):.1f} | {percentile(values_ms, 0.95):.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", default="http://localhost:4100")
    parser.add_argument("--runtime", default="http://localhost:11434")
    parser.add_argument("--key", default="sk-litellm-hub-local-123", help="proxy key (the stack's master key)")
    parser.add_argument("--model", default="smollm2:135m")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--stream-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-seconds", type=float, default=240, help="stop early after this long")
    args = parser.parse_args()

    proxy_url = f"{args.proxy.rstrip('/')}/v1/chat/completions"
    direct_url = f"{args.runtime.rstrip('/')}/v1/chat/completions"
    proxy_headers = {"Authorization": f"Bearer {args.key}"}
    deadline = time.monotonic() + args.max_seconds
    direct_s: list[float] = []
    proxied_s: list[float] = []
    overhead_ms: list[float] = []

    with httpx.Client(timeout=120) as client:
        try:  # warm both paths (model load, connection pools) outside the measurement
            for _ in range(2):
                timed_post(client, direct_url, {}, request_bodies(1, args.model, args.seed)[0])
                timed_post(client, proxy_url, proxy_headers, request_bodies(1, args.model, args.seed)[0])
        except httpx.HTTPError as exc:
            print(f"proxy_bench: the stack does not answer ({exc}); start it with `make up`", file=sys.stderr)
            return 1

        for index, body in enumerate(request_bodies(args.requests, args.model, args.seed)):
            if time.monotonic() > deadline:
                print(f"(stopped after {index} requests: --max-seconds reached)")
                break
            paths = [("direct", direct_url, {}), ("proxy", proxy_url, proxy_headers)]
            for name, url, headers in paths if index % 2 == 0 else paths[::-1]:
                start = time.perf_counter()
                response = timed_post(client, url, headers, body)
                elapsed = time.perf_counter() - start
                if name == "direct":
                    direct_s.append(elapsed)
                else:
                    proxied_s.append(elapsed)
                    if "x-litellm-overhead-duration-ms" in response.headers:
                        overhead_ms.append(float(response.headers["x-litellm-overhead-duration-ms"]))

        stream_body = {
            "model": args.model,
            "messages": [{"role": "user", "content": "Tell a short story about a cat."}],
            "max_tokens": args.stream_tokens,
            "temperature": 0,
            "seed": args.seed,
        }
        streams: dict[str, list[StreamStats]] = {"direct": [], "proxy": []}
        for index in range(args.streams):
            if time.monotonic() > deadline:
                break
            paths = [("direct", direct_url, {}), ("proxy", proxy_url, proxy_headers)]
            for name, url, headers in paths if index % 2 == 0 else paths[::-1]:
                streams[name].append(stream_once(client, url, headers, stream_body))

    added_ms = [(p - d) * 1000 for p, d in zip(proxied_s, direct_s, strict=False)]
    print(f"\nproxy_bench on {machine()}")
    print(f"proxy {args.proxy}  runtime {args.runtime}  model {args.model}  seed {args.seed}\n")
    print(f"non-streaming, {len(added_ms)} request pairs, max_tokens 1-4")
    print("| path | median ms | p95 ms |")
    print("|---|---:|---:|")
    latency_row("direct to runtime", [seconds * 1000 for seconds in direct_s])
    latency_row("through proxy", [seconds * 1000 for seconds in proxied_s])
    latency_row("added by proxy (pairwise)", added_ms)
    if overhead_ms:
        latency_row("x-litellm-overhead-duration-ms", overhead_ms)

    if streams["direct"] and streams["proxy"]:
        print(f"\nstreaming, {len(streams['proxy'])} streams each, max_tokens {args.stream_tokens}")
        print("| path | median TTFT ms | median tokens/s |")
        print("|---|---:|---:|")
        for name, label in (("direct", "direct to runtime"), ("proxy", "through proxy")):
            ttft = statistics.median(s.ttft_s for s in streams[name]) * 1000
            rate = statistics.median(s.tokens_per_s for s in streams[name])
            print(f"| {label} | {ttft:.1f} | {rate:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
