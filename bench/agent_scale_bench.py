"""Benchmark the agent host tier: ingestion with 1 and 2 workers, queries through HAProxy on 1 and 2 replicas,
and how soon a document finished through one replica is found through the other.

Self-contained: starts its own PostgreSQL, a Chroma server (`chroma run`), ingestion workers, agent hosts
(RAG_INLINE_WORKER=false, no proxy: RAG calls no model) and HAProxy on free ports (checking /health: with no
proxy behind them the hosts are alive, not ready), and stops them. Embedding is the CPU-bound part, so
ingestion is compared with the embedder alone on the same chunks in the same run.
Prints one table; compare the rows with each other (one run, one machine), not with another machine's times.

    .venv/bin/python bench/agent_scale_bench.py [--jobs 4] [--files 8] [--queries 160] [--clients 8]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "agent_host"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import machine, percentile, print_table
from host_support import auth, shared_master_key, start_host
from rag_support import NO_PROXY

from agent_host.rag.embeddings import EmbedderRegistry
from agent_host.rag.ingest import EMBED_BATCH
from agent_host.rag.store import VectorStore
from procs import MODEL_CACHE, ManagedProcess, start_balancer, start_chroma_server, start_postgres, start_rag_worker

MINILM_INT8 = "all-MiniLM-L6-v2-int8"

TOPICS = ["harbour", "orchard", "glacier", "foundry", "archive", "vineyard", "observatory", "tannery"]
QUESTIONS = [f"What does the {topic} record say about shift {n}?" for topic in TOPICS for n in range(5)]


def document(job: int, number: int) -> bytes:
    topic = TOPICS[(job + number) % len(TOPICS)]
    lines = [
        f"Record {job}-{number}, line {n}: the {topic} crew of shift {n % 5} logged {n * 7} crates "
        f"and noted the weather as {'calm' if n % 2 else 'windy'} near marker {job * 100 + n}."
        for n in range(80)
    ]
    return "\n".join(lines).encode()


def create(url: str, name: str) -> None:
    response = httpx.post(f"{url}/rag/collections", json={"name": name}, headers=auth(), timeout=30)
    response.raise_for_status()


def upload(url: str, collection: str, files: list[tuple[str, bytes]]) -> str:
    parts = [("files", (name, data, "text/plain")) for name, data in files]
    response = httpx.post(f"{url}/rag/collections/{collection}/documents", files=parts, headers=auth(), timeout=300)
    assert response.status_code == 202, response.text
    return str(response.json()["job"]["id"])


def job(url: str, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/rag/jobs/{job_id}", headers=auth(), timeout=30).json())


def embedder_alone(chroma_url: str, collection: str) -> float:
    """Chunks per second of the embedder alone, in this process, on the chunks of `collection` (batches of 128)."""
    texts = [r.text for page in VectorStore(Path("/nonexistent"), chroma_url).scan(collection) for r in page]
    embedder = EmbedderRegistry(MODEL_CACHE).get(MINILM_INT8)
    embedder.embed_documents(texts[:EMBED_BATCH])  # warm
    started = time.perf_counter()
    for first in range(0, len(texts), EMBED_BATCH):
        embedder.embed_documents(texts[first : first + EMBED_BATCH])
    return len(texts) / (time.perf_counter() - started)


def ingestion(url: str, jobs: int, files: int, tag: str) -> tuple[float, int, str]:
    """Chunks per second for `jobs` uploads of `files` files each, all queued at once: (rate, chunks, collection)."""
    collection = f"ingest-{tag}-{uuid.uuid4().hex[:6]}"
    create(url, collection)
    batches = [[(f"r{j}-{n}-{tag}.txt", document(j, n) + tag.encode()) for n in range(files)] for j in range(jobs)]
    started = time.perf_counter()
    ids = [upload(url, collection, batch) for batch in batches]
    states: dict[str, dict[str, Any]] = {}
    while len(states) < len(ids):
        for job_id in ids:
            if job_id not in states and (state := job(url, job_id))["status"] in ("done", "failed"):
                assert state["status"] == "done", state
                states[job_id] = state
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    chunks = sum(state["chunks_done"] for state in states.values())
    return chunks / seconds, chunks, collection


async def query_load(url: str, collection: str, queries: int, clients: int) -> list[float]:
    """Hybrid queries from `clients` concurrent clients; each one's latency in ms."""
    timings: list[float] = []
    counter = iter(range(queries))

    async def client(http: httpx.AsyncClient) -> None:
        for i in counter:
            body = {"query": QUESTIONS[i % len(QUESTIONS)], "collections": [collection], "mode": "hybrid"}
            started = time.perf_counter()
            response = await http.post(f"{url}/rag/query", json=body, headers=auth())
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return timings


def propagation(a: str, b: str, collection: str, samples: int) -> list[float]:
    """ms from the moment A reports a job done to B's first query that finds the document."""
    delays = []
    for i in range(samples):
        word = f"zephyrine{uuid.uuid4().hex[:8]}"
        job_id = upload(a, collection, [(f"probe-{i}.txt", f"The probe {word} was logged at dawn.".encode())])
        while job(a, job_id)["status"] not in ("done", "failed"):
            time.sleep(0.01)
        done = time.perf_counter()
        while True:
            body = {"query": word, "collections": [collection], "mode": "bm25"}
            hits = httpx.post(f"{b}/rag/query", json=body, headers=auth(), timeout=30).json()["hits"]
            if hits:
                break
        delays.append((time.perf_counter() - done) * 1000)
    return delays


def load_rows(label: str, timings: list[float], seconds: float) -> tuple[str, str, str]:
    return (
        label,
        f"{statistics.median(timings):.0f} / {percentile(timings, 0.95):.0f} ms",
        f"p50 / p95; {len(timings) / seconds:.1f} queries/s",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="uploads queued at once per ingestion run")
    parser.add_argument("--files", type=int, default=8, help="files per upload")
    parser.add_argument("--queries", type=int, default=160)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--samples", type=int, default=10, help="propagation samples")
    args = parser.parse_args()

    postgres = start_postgres()
    started: list[ManagedProcess] = [postgres.process]
    try:
        database = postgres.url("genailabs")
        chroma, chroma_url = start_chroma_server(Path(tempfile.mkdtemp(prefix="bench-chroma-")))
        started.append(chroma)
        hosts = []
        for _ in range(2):
            process, url = start_host(
                NO_PROXY, database, shared_master_key(), RAG_INLINE_WORKER="false", CHROMA_URL=chroma_url
            )
            started.append(process)
            hosts.append(url)
        worker, _ = start_rag_worker(database, chroma_url)
        started.append(worker)
        ingestion(hosts[0], 1, 2, "warm")  # loads the worker's embedder and every cache
        one_worker, chunks, ingested = ingestion(hosts[0], args.jobs, args.files, "one")
        second, _ = start_rag_worker(database, chroma_url)
        started.append(second)
        ingestion(hosts[0], 2, 2, "warm2")
        two_workers, _, _ = ingestion(hosts[0], args.jobs, args.files, "two")
        load = f"{args.jobs} uploads x {args.files} files, {chunks} chunks"
        alone = embedder_alone(chroma_url, ingested)
        rows = [
            ("the embedder alone, same chunks", f"{alone:.0f} chunks/s", "int8 MiniLM in one process: the ceiling"),
            ("ingestion, 1 worker", f"{one_worker:.0f} chunks/s", load),
            ("ingestion, 2 workers", f"{two_workers:.0f} chunks/s", f"same load; ratio {two_workers / one_worker:.2f}"),
        ]

        collection = f"queries-{uuid.uuid4().hex[:6]}"
        create(hosts[0], collection)
        job_id = upload(hosts[0], collection, [(f"q{n}.txt", document(9, n)) for n in range(args.files * 2)])
        while job(hosts[0], job_id)["status"] not in ("done", "failed"):
            time.sleep(0.1)
        single_lb, single_url = start_balancer(hosts[:1], "/health")
        started.append(single_lb)
        both_lb, both_url = start_balancer(hosts, "/health")
        started.append(both_lb)
        for url in (single_url, both_url):
            asyncio.run(query_load(url, collection, 16, 2))  # warm: BM25 loaded on both replicas
        for label, url in (
            ("queries, 1 replica behind HAProxy", single_url),
            ("queries, 2 replicas behind HAProxy", both_url),
        ):
            begun = time.perf_counter()
            timings = asyncio.run(query_load(url, collection, args.queries, args.clients))
            rows.append(load_rows(f"{label}, {args.clients} clients", timings, time.perf_counter() - begun))

        delays = propagation(hosts[0], hosts[1], collection, args.samples)
        rows.append(
            (
                "job done on A -> found on B",
                f"{statistics.median(delays):.0f} ms",
                f"p50 of {len(delays)}, max {max(delays):.0f} ms: B's first query after the job reloads what changed",
            )
        )
        print_table(f"agent host tier ({machine()})", rows, value_width=16)
    finally:
        for process in reversed(started):
            process.stop()


if __name__ == "__main__":
    main()
