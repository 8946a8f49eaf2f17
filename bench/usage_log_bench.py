"""How many request-log rows the hub writes per second, and whether any is lost.

Two measurements, defaults fit the `make up` stack:

    .venv/bin/python bench/usage_log_bench.py [--proxy URL] [--key KEY] [--db URL] [--clients 16]

1. Through the proxy: 16 concurrent clients send real one-token chats for --seconds; every answered
   request's call id must then appear exactly once in hub_request_log. Bounded by the model's speed.
2. The writer alone: 16 producer tasks feed hub.usage.UsageWriter --writer-rows synthetic rows
   each, as fast as they can, against the same PostgreSQL: the logger's own ceiling. Those rows
   are deleted afterwards so they never show in `python -m hub.keys usage`.
"""

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from proxy_bench import machine

from hub.cache import SpendLedger
from hub.db import Database, describe_url
from hub.records import UsageRow
from hub.spool import Spool
from hub.usage import UsageWriter

WRITER_PREFIX = "bench-writer-"


async def client_loop(
    client: httpx.AsyncClient, url: str, key: str, model: str, until: float, ids: list[str], errors: list[int]
) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 1}
    while time.monotonic() < until:
        response = await client.post(url, headers={"Authorization": f"Bearer {key}"}, json=body)
        if response.status_code == 200 and "x-litellm-call-id" in response.headers:
            ids.append(response.headers["x-litellm-call-id"])
        else:
            errors.append(response.status_code)


def count_rows(db_url: str, ids: list[str]) -> tuple[int, int]:
    """(rows, distinct request ids) among these ids."""
    with psycopg.connect(db_url, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM hub_request_log WHERE request_id = ANY(%s)", (ids,)
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def through_proxy(args: argparse.Namespace) -> None:
    url = f"{args.proxy.rstrip('/')}/v1/chat/completions"
    ids: list[str] = []
    errors: list[int] = []
    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        start = time.monotonic()
        until = start + args.seconds
        await asyncio.gather(
            *(client_loop(client, url, args.key, args.model, until, ids, errors) for _ in range(args.clients))
        )
        elapsed = time.monotonic() - start
    finished = time.monotonic()
    rows, distinct = count_rows(args.db, ids)
    while distinct < len(ids) and time.monotonic() - finished < 30:
        await asyncio.sleep(0.2)
        rows, distinct = count_rows(args.db, ids)
    lag = time.monotonic() - finished
    print(f"\n1. through the proxy: {args.clients} clients for {elapsed:.0f} s, one-token chats")
    print("| requests answered | requests/s | other answers | rows written | lost | duplicated | last row after |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(ids)} | {len(ids) / elapsed:.1f} | {len(errors)} | {distinct} | {len(ids) - distinct} "
        f"| {rows - distinct} | {lag:.1f} s |"
    )


def synthetic_row(producer: int, number: int, now: datetime) -> UsageRow:
    return UsageRow(
        request_id=f"{WRITER_PREFIX}{uuid.uuid4()}",
        started_at=now,
        ended_at=now + timedelta(milliseconds=120),
        key_hash=None,
        key_alias="usage-log-bench",
        model_requested="smollm2:135m",
        model_group="smollm2:135m",
        deployment="ollama_chat/smollm2:135m",
        deployment_id=f"bench-{producer}",
        api_base="http://localhost:11434/api/chat",
        prompt_tokens=31,
        completion_tokens=number % 8,
        cost=0.0,
        ttft_ms=None,
        status="success",
        http_status=200,
        error=None,
        stream=False,
    )


async def producer(writer: UsageWriter, index: int, count: int, ids: list[str]) -> None:
    for number in range(count):
        row = synthetic_row(index, number, datetime.now(UTC))
        writer.add(row)
        ids.append(row.request_id)
        if number % 50 == 0:
            await asyncio.sleep(0)  # let the flush task and the other producers run


async def writer_alone(args: argparse.Namespace, spool_dir: str) -> None:
    db = Database(args.db, connect_timeout=3, retry_after=1)
    writer = UsageWriter(
        db,
        SpendLedger(),
        Spool(Path(spool_dir) / "bench-spool.jsonl"),
        batch_size=args.batch_size,
        flush_interval=1.0,
        buffer_limit=10_000_000,  # measure the database path, not the spill
    )
    ids: list[str] = []
    start = time.monotonic()
    await asyncio.gather(*(producer(writer, i, args.writer_rows, ids) for i in range(args.clients)))
    while not await writer.flush():
        await asyncio.sleep(0.5)
    elapsed = time.monotonic() - start
    await writer.close()
    await db.close()
    rows, distinct = count_rows(args.db, ids)
    with psycopg.connect(args.db) as conn:
        conn.execute("DELETE FROM hub_request_log WHERE request_id LIKE %s", (f"{WRITER_PREFIX}%",))
    print(f"\n2. the writer alone: {args.clients} producers x {args.writer_rows} rows, batches of {args.batch_size}")
    print("| rows produced | rows written | lost | duplicated | rows/s (until the last batch committed) |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {len(ids)} | {distinct} | {len(ids) - distinct} | {rows - distinct} | {distinct / elapsed:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", default="http://localhost:4100")
    parser.add_argument("--key", default="sk-litellm-hub-local-123", help="proxy key (the stack's master key)")
    parser.add_argument("--db", default="postgresql://litellm:litellm@localhost:5433/litellm")
    parser.add_argument("--model", default="smollm2:135m")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--writer-rows", type=int, default=1000, help="synthetic rows per producer")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--spool-dir", default="/tmp", help="where the writer would spill (it should not)")
    args = parser.parse_args()
    try:
        httpx.get(f"{args.proxy.rstrip('/')}/health/liveliness", timeout=3).raise_for_status()
        psycopg.connect(args.db, connect_timeout=3).close()
    except (httpx.HTTPError, psycopg.OperationalError) as exc:
        print(
            f"usage_log_bench: the stack does not answer (proxy {args.proxy}, database {describe_url(args.db)}: "
            f"{type(exc).__name__}); start it with `make up`",
            file=sys.stderr,
        )
        return 1
    print(f"usage_log_bench on {machine()}")
    print(f"proxy {args.proxy}  database {describe_url(args.db)}")
    asyncio.run(through_proxy(args))
    asyncio.run(writer_alone(args, args.spool_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
