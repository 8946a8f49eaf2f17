"""Benchmark RAG: ingestion chunks/s end to end, and query latency at 10k and 100k chunks.

Ingestion: one batch of text files uploaded with wait=true, through the HTTP API of an agent host process this
script starts, and through RagService in-process, for both embedders. Query latency: RagService.query (what the
chat pipeline calls, query embedding included) on collections of 10k and 100k chunks written through the service's
registry and store. Their texts are realistic (random runs of real sentences); `--real` of them get real int8
embeddings, the rest reuse a real embedding plus a little noise, renormalised (say --real 100000 to embed all).

Uses PostgreSQL at --database-url when it answers (the stack's genailabs database), else a private temporary
cluster; Chroma lives in a temp dir. Prints one table; cleans up after itself.

    .venv/bin/python bench/rag_bench.py [--sizes 10000 100000] [--queries 100] [--real 10000]
        [--ingest-files 20] [--repeat 2]
"""

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from agent_host.config import Settings
from agent_host.rag.embeddings import MINILM, MINILM_INT8
from agent_host.rag.ingest import EMBED_BATCH
from agent_host.rag.registry import NewDocument
from agent_host.rag.schemas import CollectionCreate, QueryRequest
from agent_host.rag.service import RagService, open_rag
from agent_host.rag.store import chunk_id, chunk_metadata
from agent_host.sessions.store import open_pool
from genailabs_accounts.models import Account
from genailabs_accounts.store import AccountStore

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # devstack and the test process helpers, when run as a script

from benchlib import percentile  # noqa: E402

from devstack.config import get_settings as stack_settings  # noqa: E402
from devstack.probe import free_port, http_ok, postgres_ok  # noqa: E402
from procs import PYTHON, ManagedProcess, start_postgres  # noqa: E402

CORPUS = ROOT / "bench" / "rag_eval" / "corpus"
QUESTIONS = ROOT / "bench" / "rag_eval" / "questions.jsonl"
CHUNKS_PER_DOCUMENT = 100
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def machine() -> str:
    with Path("/proc/cpuinfo").open() as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "unknown cpu")
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def source_texts() -> list[str]:
    """The eval corpus's text files when present, else the standard library's docstrings: real English prose."""
    if CORPUS.is_dir():
        texts = [path.read_text(errors="replace") for path in sorted(CORPUS.glob("*.txt"))]
        if texts:
            return texts
    import inspect
    import pkgutil

    texts = []
    for module in sorted(m.name for m in pkgutil.iter_modules() if not m.name.startswith("_"))[:200]:
        try:
            texts.append(inspect.getdoc(__import__(module)) or "")
        except Exception:  # some modules refuse to import here; any 200 will do
            continue
    return [t for t in texts if len(t) > 200]


def sentences(texts: list[str]) -> list[str]:
    found = [" ".join(s.split()) for text in texts for s in SENTENCE.split(text)]
    return [s for s in found if 30 <= len(s) <= 300]


def synthetic_chunks(pool: list[str], count: int, seed: int) -> list[str]:
    """Chunk-sized runs of 4-6 real sentences; random runs, so the texts are distinct."""
    rng = random.Random(seed)
    return [" ".join(rng.sample(pool, rng.randint(4, 6))) for _ in range(count)]


def ingest_files(texts: list[str], count: int) -> list[tuple[str, str | None, bytes]]:
    """`count` text files of 1500 consecutive corpus words each."""
    words = " ".join(texts).split()
    per_file = 1500
    files: list[tuple[str, str | None, bytes]] = []
    for i in range(count):
        start = (i * per_file) % max(1, len(words) - per_file)
        files.append((f"doc{i:03d}.txt", "text/plain", " ".join(words[start : start + per_file]).encode()))
    return files


@contextmanager
def temporary_postgres() -> Iterator[str]:
    instance = start_postgres()
    try:
        yield instance.url("genailabs")
    finally:
        instance.remove()


def hub_url(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/litellm"


def first_admin(database_url: str) -> Account:
    """The bench database's first admin (made now if missing): the operator key and in-process calls act as it."""
    store = AccountStore(database_url, hub_url(database_url))
    try:
        return store.ensure_first_admin("bench-admin", secrets.token_urlsafe(24))[0]
    finally:
        store.close()


@contextmanager
def host_process(database_url: str, chroma: Path, key: str) -> Iterator[str]:
    """An agent host of our own (no proxy needed: ingestion calls no model), Chroma in the bench's temp dir."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        f"agent_host:{port}",
        [PYTHON, "-m", "agent_host", "--port", str(port)],
        health=lambda: http_ok(f"{url}/health"),
        env={
            "AGENT_HOST_API_KEY": key,
            "AGENT_HOST_PROXY_KEY": "unused",
            "DATABASE_URL": database_url,
            "HUB_DATABASE_URL": hub_url(database_url),
            "CHROMA_PATH": str(chroma),
            "HF_HUB_OFFLINE": "1",
        },
        startup_timeout=90.0,
    )
    process.start()
    try:
        yield url
    finally:
        process.stop()


def ingest_http(url: str, key: str, model: str, files: list[tuple[str, str | None, bytes]]) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=900, headers=headers) as client:
        for name in (f"warm-{model.lower()}", f"http-{model.lower()}"):
            client.delete(f"{url}/rag/collections/{name}")
            client.post(f"{url}/rag/collections", json={"name": name, "embedding_model": model}).raise_for_status()
        warm = [("files", ("warm.txt", b"Loads the embedding model before the clock starts.", "text/plain"))]
        client.post(f"{url}/rag/collections/warm-{model.lower()}/documents?wait=true", files=warm).raise_for_status()
        parts = [("files", (name, data, kind or "text/plain")) for name, kind, data in files]
        started = time.perf_counter()
        response = client.post(f"{url}/rag/collections/http-{model.lower()}/documents?wait=true", files=parts)
        seconds = time.perf_counter() - started
        response.raise_for_status()
    return response.json()["job"]["chunks_done"], seconds


async def ingest_service(
    rag: RagService, admin: Account, model: str, files: list[tuple[str, str | None, bytes]]
) -> tuple[int, float]:
    name = f"service-{model.lower()}"
    if name in {c.name for c in await rag.list_collections(admin)}:
        await rag.delete_collection(name, admin)
    await rag.create_collection(CollectionCreate(name=name, embedding_model=model), admin)
    await rag.embedder(model)
    started = time.perf_counter()
    result = await rag.upload(name, files, wait=True, person=admin)
    seconds = time.perf_counter() - started
    assert result.job is not None and result.job.status == "done", result
    return result.job.chunks_done, seconds


async def embedding_alone(rag: RagService, model: str) -> float:
    """Seconds the embedder alone takes for the chunks just ingested (in the job's batch size), for comparison."""
    texts = [record.text for page in rag.store.scan(f"service-{model.lower()}") for record in page]
    embedder = await rag.embedder(model)
    started = time.perf_counter()
    for first in range(0, len(texts), EMBED_BATCH):
        await asyncio.to_thread(embedder.embed_documents, texts[first : first + EMBED_BATCH])
    return time.perf_counter() - started


async def build_collection(rag: RagService, admin: Account, name: str, texts: list[str], vectors: np.ndarray) -> float:
    """Writes prepared chunks the way a finished job leaves them: registry rows and Chroma (BM25 loads on use)."""
    if name in {c.name for c in await rag.list_collections(admin)}:
        await rag.delete_collection(name, admin)
    await rag.create_collection(CollectionCreate(name=name, embedding_model=MINILM_INT8), admin)
    started = time.perf_counter()
    job_id = await rag.jobs.open(name, "ingest", str(admin.id), 3600)
    for first in range(0, len(texts), CHUNKS_PER_DOCUMENT):
        body = texts[first : first + CHUNKS_PER_DOCUMENT]
        filename = f"synthetic{first // CHUNKS_PER_DOCUMENT:05d}.txt"
        document = NewDocument(name, filename, "txt", sum(map(len, body)), secrets.token_hex(32), None, [])
        document_id = await rag.registry.insert_document(document, job_id)
        assert document_id is not None
        ids = [chunk_id(document_id, 0, i) for i in range(len(body))]
        metas = [chunk_metadata(document_id, 0, filename, "txt", i, None, None, 0, len(t)) for i, t in enumerate(body)]
        await asyncio.to_thread(rag.store.add, name, ids, vectors[first : first + len(body)], body, metas)
        await rag.registry.finalise(name, document_id, len(body))
    await rag.jobs.discard(job_id)
    collection = await rag.registry.get_collection(name)
    await rag.view.current(name, collection.version, keywords=True)
    return time.perf_counter() - started


async def latencies(
    rag: RagService, admin: Account, name: str, mode: str, questions: list[str], runs: int
) -> list[float]:
    for question in questions[:5]:  # warm-up: caches, first BM25 mask
        await rag.query(QueryRequest(query=question, collections=[name], mode=mode), admin)  # type: ignore[arg-type]
    timings = []
    for i in range(runs):
        started = time.perf_counter()
        request = QueryRequest(query=questions[i % len(questions)], collections=[name], mode=mode)  # type: ignore[arg-type]
        await rag.query(request, admin)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def embed_for_queries(rag: RagService, texts: list[str], real: int) -> tuple[np.ndarray, str]:
    """Real int8 embeddings for the first `real` texts; the rest reuse one of those plus noise, renormalised."""
    embedder = await rag.embedder(MINILM_INT8)
    real = min(real, len(texts))
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    started = time.perf_counter()
    for first in range(0, real, 1000):
        last = min(first + 1000, real)
        vectors[first:last] = await asyncio.to_thread(embedder.embed_documents, texts[first:last])
    seconds = time.perf_counter() - started
    extra = len(texts) - real
    if extra:
        rng = np.random.default_rng(7)
        noisy = vectors[rng.integers(0, real, extra)] + rng.normal(0, 0.02, (extra, vectors.shape[1]))
        vectors[real:] = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
    return vectors, f"{real} real int8 embeddings in {seconds:.0f} s ({real / seconds:.0f}/s), {extra} noisy copies"


async def run(args: argparse.Namespace, database_url: str, workdir: Path) -> None:
    texts = source_texts()
    pool_sentences = sentences(texts)
    questions = (
        [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
        if QUESTIONS.exists()
        else [" ".join(s.split()[:10]) for s in pool_sentences[:: max(1, len(pool_sentences) // 200)]]
    )
    files = ingest_files(texts, args.ingest_files)
    settings = Settings(  # type: ignore[call-arg,arg-type]
        agent_host_api_key="bench",
        agent_host_proxy_key="unused",
        database_url=database_url,
        chroma_path=workdir / "chroma",
    )
    ingestion: list[tuple[str, str, int, list[float]]] = []
    admin = first_admin(database_url)
    key = secrets.token_hex(16)
    with host_process(database_url, workdir / "chroma-host", key) as url:
        for model in (MINILM, MINILM_INT8):
            runs = [ingest_http(url, key, model, files) for _ in range(args.repeat)]
            ingestion.append(("HTTP API, wait=true", model, runs[0][0], [seconds for _, seconds in runs]))
    pool = await open_pool(database_url, 5.0)
    await pool.wait(timeout=10)
    async with open_rag(settings, pool) as rag:
        for model in (MINILM, MINILM_INT8):
            runs = [await ingest_service(rag, admin, model, files) for _ in range(args.repeat)]
            ingestion.append(("RagService.upload", model, runs[0][0], [seconds for _, seconds in runs]))
            alone = [await embedding_alone(rag, model) for _ in range(args.repeat)]
            ingestion.append(("embedder alone", model, runs[0][0], alone))
            await rag.delete_collection(f"service-{model.lower()}", admin)
        all_texts = synthetic_chunks(pool_sentences, max(args.sizes), seed=7)
        vectors, how = await embed_for_queries(rag, all_texts, args.real)
        built = [how]
        results: list[tuple[int, str, list[float]]] = []
        for size in sorted(args.sizes):
            name = f"bench-{size}"
            seconds = await build_collection(rag, admin, name, all_texts[:size], vectors[:size])
            built.append(f"{size} chunks written in {seconds:.0f} s")
            for mode in ("vector", "bm25", "hybrid"):
                results.append((size, mode, await latencies(rag, admin, name, mode, questions, args.queries)))
            await rag.delete_collection(name, admin)
    await pool.close()
    report(settings, files, ingestion, built, results, args.queries)


def report(
    settings: Settings,
    files: list[tuple[str, str | None, bytes]],
    ingestion: list[tuple[str, str, int, list[float]]],
    built: list[str],
    results: list[tuple[int, str, list[float]]],
    queries: int,
) -> None:
    targets = {"vector": 50.0, "bm25": 100.0, "hybrid": 100.0}
    print(f"RAG benchmark · {machine()} · load average {os.getloadavg()[0]:.1f} at the end")
    print(f"ingestion: {len(files)} text files of the eval corpus, chunks of {settings.rag_chunk_tokens} tokens")
    print(f"{'ingestion (end to end)':<24}{'embedder':<24}{'chunks':>7}{'median':>10}{'best':>9}  target >= 300/s")
    for path, model, chunks, times in ingestion:
        median, best = chunks / statistics.median(times), chunks / min(times)
        print(f"{path:<24}{model:<24}{chunks:>7}{median:>8.0f}/s{best:>7.0f}/s")
    print(f"query collections: {'; '.join(built)}")
    print(f"{'query (RagService, ' + str(queries) + ' runs)':<32}{'chunks':>8}{'p50':>10}{'p95':>10}  target p95")
    for size, mode, timings in results:
        p50, p95 = statistics.median(timings), percentile(timings, 0.95)
        verdict = "ok" if p95 < targets[mode] else "over"
        print(f"{mode:<32}{size:>8}{p50:>8.1f}ms{p95:>8.1f}ms  < {targets[mode]:.0f} ms {verdict}")


def main() -> int:
    stack = stack_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=stack.database_url.rsplit("/", 1)[0] + "/genailabs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--real", type=int, default=10_000, help="chunks given real embeddings (the rest: noise)")
    parser.add_argument("--ingest-files", type=int, default=20, help="text files of ~1500 words each")
    parser.add_argument("--repeat", type=int, default=2, help="ingestion runs per path and embedder")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        if postgres_ok(args.database_url) is None:
            asyncio.run(run(args, args.database_url, workdir))
        else:
            with temporary_postgres() as url:
                asyncio.run(run(args, url, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
