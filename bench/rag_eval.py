"""Retrieval quality and latency of the agent host's RAG API on the Docutils evaluation set (bench/rag_eval/).

Starts a private PostgreSQL and agent host (no proxy: retrieval needs no model), builds one collection from the
corpus, asks every question in vector, BM25 and hybrid mode and prints one table: recall@1, recall@5, MRR@5,
answer@5 (the answer phrase is in a top-5 chunk) and query latency. Everything it started is removed at the end.

    .venv/bin/python bench/rag_eval.py [--embedding-model all-MiniLM-L6-v2-int8] [--chunk-tokens N]
        [--model-cache .stack/models] [--env RAG_RRF_K=20] [--limit N] [--json PATH]
    .venv/bin/python bench/rag_eval.py --host http://127.0.0.1:8000 --api-key KEY   # an already running host
"""

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # devstack and the test process helpers, when run as a script

from benchlib import machine, percentile  # noqa: E402

from devstack.probe import free_port, http_ok  # noqa: E402
from procs import PYTHON, ManagedProcess, start_postgres  # noqa: E402

EVAL_DIR = ROOT / "bench" / "rag_eval"
MODES = ("vector", "bm25", "hybrid")
TOP_K = 5
# Upload batches stay well under the host's request size limits and still send several files per request.
BATCH_FILES = 8
BATCH_BYTES = 900_000
MEDIA_TYPES = {".txt": "text/plain", ".md": "text/markdown", ".html": "text/html"}


@dataclass
class Question:
    id: str
    question: str
    source: str
    answer: str


@dataclass
class ModeResult:
    ranks: list[int | None] = field(default_factory=list)  # 1-based rank of the first relevant hit, None: missed
    answered: list[bool] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)

    def recall(self, k: int) -> float:
        return sum(1 for rank in self.ranks if rank is not None and rank <= k) / len(self.ranks)

    def mrr(self) -> float:
        return sum(1 / rank for rank in self.ranks if rank is not None) / len(self.ranks)

    def summary(self) -> dict[str, float]:
        return {
            "recall@1": self.recall(1),
            "recall@5": self.recall(5),
            "mrr@5": self.mrr(),
            "answer@5": sum(self.answered) / len(self.answered),
            "p50_ms": percentile(self.latencies_ms, 0.5),
            "p95_ms": percentile(self.latencies_ms, 0.95),
            "server_p50_ms": percentile(self.server_ms, 0.5),
        }


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load_questions(limit: int | None) -> list[Question]:
    lines = (EVAL_DIR / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions = [Question(**json.loads(line)) for line in lines if line.strip()]
    return questions[:limit] if limit else questions


def batches(files: list[Path]) -> Iterator[list[Path]]:
    batch: list[Path] = []
    for path in files:
        if batch and (
            len(batch) >= BATCH_FILES or sum(p.stat().st_size for p in batch) + path.stat().st_size > BATCH_BYTES
        ):
            yield batch
            batch = []
        batch.append(path)
    if batch:
        yield batch


@contextmanager
def private_host(model_cache: Path | None, extra_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A private PostgreSQL and agent host on free ports, removed with their temp dirs on exit."""
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="rag-eval-"))
        stack.callback(shutil.rmtree, work, True)
        postgres = start_postgres()
        stack.callback(postgres.process.log_path.unlink, True)
        stack.callback(postgres.remove)
        port, key = free_port(), f"sk-rag-eval-{uuid.uuid4().hex}"
        url = f"http://127.0.0.1:{port}"
        host = ManagedProcess(
            f"agent_host:{port}",
            [PYTHON, "-m", "agent_host", "--port", str(port)],
            health=lambda: http_ok(f"{url}/health"),
            env={
                "AGENT_HOST_API_KEY": key,
                # Retrieval never calls a model: the proxy address is a closed port and the key a placeholder.
                "AGENT_HOST_PROXY_KEY": "sk-unused",
                "LITELLM_BASE_URL": "http://127.0.0.1:9/v1",
                "DATABASE_URL": postgres.url("genailabs"),
                "CHROMA_PATH": str(work / "chroma"),
                "MODEL_CACHE_DIR": str(model_cache or work / "models"),
                **extra_env,
            },
            startup_timeout=180.0,
        )
        stack.callback(host.log_path.unlink, True)
        host.start()
        stack.callback(host.stop)
        yield url, key


def ingest(client: httpx.Client, collection: str, files: list[Path]) -> float:
    """Uploads the corpus several files per request and waits for each batch to be indexed; returns seconds."""
    started = time.perf_counter()
    for batch in batches(files):
        parts = [("files", (path.name, path.read_bytes(), MEDIA_TYPES[path.suffix])) for path in batch]
        response = client.post(f"/rag/collections/{collection}/documents", params={"wait": "true"}, files=parts)
        response.raise_for_status()
        result = response.json()
        job = result.get("job")
        while job and job["status"] in ("queued", "running"):
            time.sleep(0.2)
            job = client.get(f"/rag/jobs/{job['id']}").json()
        outcomes = job["files"] if job else result["files"]
        failed = [
            f"{item['filename']}: {item['status']} {item.get('error')}"
            for item in outcomes
            if item["status"] not in ("indexed", "duplicate")
        ]
        if failed:
            raise RuntimeError("ingestion failed for " + "; ".join(failed))
    return time.perf_counter() - started


def ask(client: httpx.Client, collection: str, question: Question, mode: str, result: ModeResult) -> None:
    body = {"query": question.question, "collections": [collection], "top_k": TOP_K, "mode": mode, "min_score": -1}
    started = time.perf_counter()
    response = client.post("/rag/query", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    reply = response.json()
    hits = reply["hits"][:TOP_K]
    rank = next((position for position, hit in enumerate(hits, 1) if hit["source"] == question.source), None)
    answer = normalise(question.answer)
    result.ranks.append(rank)
    result.answered.append(any(answer in normalise(hit["text"]) for hit in hits))
    result.latencies_ms.append(elapsed)
    result.server_ms.append(float(reply["took_ms"]))


def evaluate(url: str, key: str, args: argparse.Namespace) -> dict[str, Any]:
    files = sorted(path for path in (EVAL_DIR / "corpus").iterdir() if path.suffix in MEDIA_TYPES)
    questions = load_questions(args.limit)
    collection = f"rag-eval-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        spec: dict[str, Any] = {"name": collection, "embedding_model": args.embedding_model}
        if args.chunk_tokens:
            spec["chunk_tokens"] = args.chunk_tokens
        client.post("/rag/collections", json=spec).raise_for_status()
        try:
            # Loads the embedding model (and exports it to ONNX on a cold cache) before the clock starts.
            client.post("/rag/query", json={"query": "warm-up", "collections": [collection], "mode": "vector"})
            seconds = ingest(client, collection, files)
            info = client.get(f"/rag/collections/{collection}").json()
            results = {mode: ModeResult() for mode in MODES}
            for mode in MODES:  # warm-up: model load, BM25 index build, connections
                ask(client, collection, questions[0], mode, ModeResult())
            for question in questions:  # question-major, so every mode sees the same machine load
                for mode in MODES:
                    ask(client, collection, question, mode, results[mode])
        finally:
            if not args.keep:
                client.delete(f"/rag/collections/{collection}")
    return {
        "machine": machine(),
        "host_env": args.env,
        "corpus": {
            "documents": len(files),
            "megabytes": round(sum(path.stat().st_size for path in files) / 1e6, 2),
            "chunks": info["chunks"],
            "questions": len(questions),
        },
        "collection": {key: info[key] for key in ("embedding_model", "chunk_tokens", "chunk_overlap")},
        "ingest": {"seconds": round(seconds, 2), "chunks_per_second": round(info["chunks"] / seconds, 1)},
        "modes": {mode: results[mode].summary() for mode in MODES},
        "questions": [
            {"id": q.id, "source": q.source, **{f"{mode}_rank": results[mode].ranks[i] for mode in MODES}}
            for i, q in enumerate(questions)
        ],
    }


def report(numbers: dict[str, Any]) -> None:
    corpus, collection, ingest_ = numbers["corpus"], numbers["collection"], numbers["ingest"]
    print(f"RAG retrieval eval · {numbers['machine']}")
    print(
        f"corpus: Docutils docs, {corpus['documents']} documents, {corpus['megabytes']} MB, {corpus['chunks']} chunks;"
        f" {corpus['questions']} questions · {collection['embedding_model']}, chunks of {collection['chunk_tokens']}"
        f" tokens (overlap {collection['chunk_overlap']}) · top_k {TOP_K}, min_score -1"
    )
    if numbers["host_env"]:
        print("host settings: " + " ".join(numbers["host_env"]))
    print(
        f"ingestion: {ingest_['seconds']:.1f} s, {ingest_['chunks_per_second']:.0f} chunks/s"
        " end to end (HTTP upload, wait=true)"
    )
    print(f"{'mode':<8} {'recall@1':>9} {'recall@5':>9} {'MRR@5':>7} {'answer@5':>9} {'p50 ms':>8} {'p95 ms':>8}")
    for mode, row in numbers["modes"].items():
        print(
            f"{mode:<8} {row['recall@1']:>9.3f} {row['recall@5']:>9.3f} {row['mrr@5']:>7.3f} {row['answer@5']:>9.3f}"
            f" {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f}"
        )
    modes = numbers["modes"]
    best_single = max(modes["vector"]["recall@5"], modes["bm25"]["recall@5"])
    verdict = "ok" if modes["hybrid"]["recall@5"] > best_single else "NOT above both single methods"
    print(f"hybrid recall@5 vs best single method: {modes['hybrid']['recall@5']:.3f} vs {best_single:.3f}  {verdict}")
    print(
        "latency is client-side per POST /rag/query; server-side took_ms p50: "
        + ", ".join(f"{mode} {row['server_p50_ms']:.1f}" for mode, row in modes.items())
    )


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", help="URL of a running agent host (default: start a private one)")
    parser.add_argument("--api-key", default=os.environ.get("AGENT_HOST_API_KEY", ""))
    parser.add_argument("--embedding-model", default="all-MiniLM-L6-v2-int8")
    parser.add_argument("--chunk-tokens", type=int, help="chunk size of the collection (default: the host's)")
    parser.add_argument("--model-cache", type=Path, help="MODEL_CACHE_DIR of the private host, e.g. .stack/models")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the private host, e.g."
        " RAG_RRF_K=20 (repeatable): tries fusion parameters without editing .env",
    )
    parser.add_argument("--limit", type=int, help="ask only the first N questions")
    parser.add_argument("--keep", action="store_true", help="keep the collection afterwards")
    parser.add_argument("--json", type=Path, help="also write the numbers (and per-question ranks) here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, interrupted)
    try:
        if args.host:
            if not args.api_key:
                print("rag_eval: --api-key (or AGENT_HOST_API_KEY) is needed with --host", file=sys.stderr)
                return 1
            numbers = evaluate(args.host.rstrip("/"), args.api_key, args)
        else:
            extra_env = dict(item.split("=", 1) for item in args.env)
            with private_host(args.model_cache, extra_env) as (url, key):
                numbers = evaluate(url, key, args)
    except KeyboardInterrupt:
        print("rag_eval: interrupted, cleaned up", file=sys.stderr)
        return 130
    except (httpx.HTTPError, RuntimeError) as exc:
        detail = exc.response.text[:300] if isinstance(exc, httpx.HTTPStatusError) else ""
        print(f"rag_eval: {exc} {detail}", file=sys.stderr)
        return 1
    report(numbers)
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
