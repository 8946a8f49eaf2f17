"""Benchmark the proxy tier: one proxy against two behind HAProxy, the balancer's own cost, the response cache.

Self-contained: starts its own PostgreSQL, one embedded runtime, Redis, two LiteLLM proxies with the hub and
HAProxy on free ports, and stops them. Every chat asks for `max_tokens` 1. The tier's own figures use an
`instant` model group whose backend answers at once (the scripted OpenAI-compatible server of the UI tests,
as LiteLLM's own load tests use a fake endpoint), so they measure the proxies, the balancer, Redis and
PostgreSQL rather than the CPU model; the same load on the embedded smollm2:135m shows what a chat sees.
Prints one table; compare the rows with each other (one run, one machine), not with another machine's times.

    .venv/bin/python bench/proxy_scale_bench.py [--requests 160] [--clients 16]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "streamlit_service"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml
from benchlib import machine, percentile, print_table
from fake_model_server import FakeModelServer

from hub.keystore import KeyStore, connect
from procs import MASTER_KEY, start_balancer, start_postgres, start_proxy, start_redis, start_runtime

MODEL = "smollm2:135m"
INSTANT = "instant"
REPO_CONFIG = Path(__file__).resolve().parent.parent / "litellm_hub" / "litellm_config.yaml"


def body(question: str, model: str = MODEL, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": 1, **extra}


def bench_config(directory: Path, instant_url: str) -> Path:
    """The repo's config plus the `instant` group on the scripted server."""
    config = yaml.safe_load(REPO_CONFIG.read_text())
    config["model_list"].append(
        {"model_name": INSTANT, "litellm_params": {"model": "openai/instant", "api_base": f"{instant_url}/v1",
                                                   "api_key": "none"}}
    )  # fmt: skip
    path = directory / "litellm_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


async def load(urls: list[str], requests: int, clients: int, model: str) -> tuple[float, list[float], Counter[int]]:
    """`requests` chats from `clients` concurrent clients spread over `urls`; (wall s, latencies ms, statuses)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(requests):
        queue.put_nowait(number)

    async def client(index: int) -> None:
        async with httpx.AsyncClient(base_url=urls[index % len(urls)], timeout=300) as http:
            while not queue.empty():
                number = queue.get_nowait()
                started = time.perf_counter()
                # A distinct question each time: no answer comes from the cache here.
                reply = await http.post(
                    "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {MASTER_KEY}"},
                    json=body(f"Say {number}. {uuid.uuid4().hex[:6]}", model),
                )
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[reply.status_code] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(clients)))
    return time.perf_counter() - started, latencies, statuses


def sequential_ms(
    url: str, count: int, payload: dict[str, Any] | None = None, model: str = MODEL, key: str = MASTER_KEY
) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=120) as http:
        for number in range(count):
            started = time.perf_counter()
            reply = http.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json=payload or body(f"Count {number}. {uuid.uuid4().hex[:6]}", model),
            )
            reply.raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times


def redis_calls(client: "redis.Redis[bytes]") -> int:
    stats = client.info("commandstats")
    return sum(int(value["calls"]) for value in stats.values() if isinstance(value, dict))


def describe(statuses: Counter[int]) -> str:
    failed = {code: count for code, count in sorted(statuses.items()) if code != 200}
    return "none failed" if not failed else "failed: " + ", ".join(f"{n}x {code}" for code, n in failed.items())


def tier_rows(
    label: str, urls: list[str], balanced: str, requests: int, clients: int, model: str
) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    throughput = {}
    for name, targets in (("1 proxy", [urls[0]]), ("2 proxies + HAProxy", [balanced])):
        wall, latencies, statuses = asyncio.run(load(targets, requests, clients, model))
        throughput[name] = requests / wall
        rows += [
            (f"{label}, {name}: requests/s", f"{requests / wall:.1f}", f"{clients} clients, {describe(statuses)}"),
            (f"{label}, {name}: p50 / p95", f"{statistics.median(latencies):.0f} / "
             f"{percentile(latencies, 0.95):.0f} ms", ""),
        ]  # fmt: skip
    ratio = throughput["2 proxies + HAProxy"] / throughput["1 proxy"]
    rows.append((f"{label}: throughput 2 proxies / 1", f"{ratio:.2f}x", ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="chats per load run on the instant backend")
    parser.add_argument("--model-requests", type=int, default=64, help="chats per load run on smollm2:135m")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--samples", type=int, default=30, help="sequential requests per latency figure")
    args = parser.parse_args()

    instant = FakeModelServer(models=[INSTANT])
    instant.script.pieces = ["ok"]
    instant.start()
    config = bench_config(Path(tempfile.mkdtemp(prefix="bench-scale-")), instant.url)
    postgres = start_postgres()
    runtime, runtime_url = start_runtime(Path(tempfile.mkdtemp(prefix="bench-models-")))
    store = start_redis()
    started: list[Any] = []
    try:
        database = postgres.url("litellm")
        for _ in range(2):
            process, url = start_proxy(
                MASTER_KEY, database, runtime_url, runtime_url, config=config, redis_url=store.url
            )
            started.append((process, url))
        urls = [url for _, url in started]
        balancer, balanced = start_balancer(urls)
        started.append((balancer, balanced))
        sequential_ms(balanced, 6)  # warm both instances and the runtime
        sequential_ms(balanced, 6, model=INSTANT)

        rows = tier_rows("instant backend", urls, balanced, args.requests, args.clients, INSTANT)
        rows += tier_rows("smollm2:135m", urls, balanced, args.model_requests, args.clients, MODEL)

        # Pairs, one straight to an instance and one through HAProxy, so drift in load hits both alike.
        pairs = [
            (sequential_ms(urls[0], 1, model=INSTANT)[0], sequential_ms(balanced, 1, model=INSTANT)[0])
            for _ in range(args.samples * 4)
        ]
        direct, through = [d for d, _ in pairs], [t for _, t in pairs]
        rows.append(
            (
                "latency added by HAProxy (pairwise p50)",
                f"{statistics.median(t - d for d, t in pairs):.1f} ms",
                f"instant backend, one client: direct {statistics.median(direct):.1f} ms, through HAProxy "
                f"{statistics.median(through):.1f} ms",
            )
        )

        question = body(f"Name a colour. {uuid.uuid4().hex[:6]}", temperature=0)
        misses = [sequential_ms(urls[0], 1, {**question, "seed": seed})[0] for seed in range(args.samples)]
        sequential_ms(urls[0], 1, question)  # stored
        hits = sequential_ms(urls[1], args.samples, question)  # served by the other instance
        rows += [
            ("cache miss (p50)", f"{statistics.median(misses):.0f} ms", "smollm2:135m, temperature 0, a new seed each"),
            ("cache hit (p50)", f"{statistics.median(hits):.0f} ms", "the same request, through the other instance"),
        ]

        client: redis.Redis[bytes] = redis.Redis.from_url(store.url)
        with connect(database, 10) as conn:
            limited, _ = KeyStore(conn).create(f"bench-{uuid.uuid4().hex[:6]}", [], rpm_limit=100_000, tpm_limit=10**9)
        for key, what in ((MASTER_KEY, "master key: no limits to count"), (limited, "a key with rpm and tpm limits")):
            before = redis_calls(client)
            sequential_ms(urls[0], args.samples, model=INSTANT, key=key)
            per_request = (redis_calls(client) - before) / args.samples
            rows.append(("Redis commands per request", f"{per_request:.1f}", f"uncached chat, {what}"))
        print_table(f"proxy tier, max_tokens 1 ({machine()})", rows, value_width=14)
    finally:
        for process, _ in reversed(started):
            process.stop()
        runtime.stop()
        store.remove()
        postgres.remove()
        instant.stop()


if __name__ == "__main__":
    main()
