"""Benchmark the RAG embedders: sentences/s, 100-token chunks/s and query latency, fp32 torch vs ONNX int8.

Real text: the repository's Markdown plus the Python reference topics that ship with CPython (pydoc_data), loaded
and chunked by the host's own loader and chunker. Runs in-process, no stack needed; the first run exports the int8
model into the cache directory (a few seconds). Prints one table; stops by itself.

    .venv/bin/python bench/embedding_bench.py [--chunks 600] [--sentences 1000] [--queries 200] [--repeats 3]
"""

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from benchlib import machine, percentile

from agent_host.config import STACK_DIR
from agent_host.rag.chunking import Chunk, chunk_document
from agent_host.rag.embeddings import MINILM, MINILM_INT8, Embedder, EmbedderRegistry
from agent_host.rag.loaders import load_document

ROOT = Path(__file__).resolve().parent.parent


def corpus() -> list[tuple[str, bytes]]:
    """(filename, bytes) of real English text: this repo's Markdown and CPython's reference topics."""
    from pydoc_data.topics import topics

    files = [(path.name, path.read_bytes()) for path in sorted(ROOT.glob("**/*.md")) if _ours(path)]
    files += [(f"{name}.txt", text.encode()) for name, text in sorted(topics.items())]
    return files


def _ours(path: Path) -> bool:
    return not {".venv", ".stack", "node_modules", ".git"} & set(path.relative_to(ROOT).parts)


def chunk_corpus(files: list[tuple[str, bytes]], embedder: Embedder, tokens: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for name, data in files:
        chunks += chunk_document(load_document(name, data), tokens, overlap, embedder.count_tokens)
    return chunks


def windows_of(texts: list[str], embedder: Embedder, tokens: int, limit: int) -> list[str]:
    """Runs of consecutive words of as many tokens as fit in `tokens` (within a word or two of it)."""
    words = " ".join(texts).split()
    windows: list[str] = []
    start = 0
    while len(windows) < limit and start < len(words):
        end = start + 1
        while end < len(words) and embedder.count_tokens(" ".join(words[start : end + 1])) <= tokens:
            end += 1
        windows.append(" ".join(words[start:end]))
        start = end
    return windows


def sentences_of(files: list[tuple[str, bytes]], limit: int) -> list[str]:
    """Prose sentences of 6-40 words (no code, no tables)."""
    found: list[str] = []
    for _, data in files:
        for paragraph in re.split(r"\n\s*\n", data.decode()):
            for sentence in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())):
                if 6 <= len(sentence.split()) <= 40 and re.fullmatch(r"[A-Z][^|`*#=]+[.!?]", sentence):
                    found.append(sentence)
    return found[:limit]


def rate(run: Callable[[], object], items: int, repeats: int) -> tuple[float, float]:
    """Items per second (median of `repeats` runs: the machine is shared) and the least CPU ms per item.

    CPU time does not grow when other processes take the cores, so cores * 1000 / (CPU ms per item) is what the
    embedder would do with the machine to itself (a floor: idle-spinning threads count as CPU time too).
    """
    rates, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        rates.append(items / (time.perf_counter() - started))
        cpu.append((time.process_time() - started_cpu) * 1000 / items)
    return statistics.median(rates), min(cpu)


def query_latencies(embedder: Embedder, queries: list[str]) -> list[float]:
    timings = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed_query(query)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--sentences", type=int, default=600)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-tokens", type=int, default=100)
    parser.add_argument("--overlap", type=int, default=15)
    parser.add_argument("--cache-dir", type=Path, default=STACK_DIR / "models")
    args = parser.parse_args()

    registry = EmbedderRegistry(args.cache_dir)
    started = time.perf_counter()
    embedders = {name: registry.get(name) for name in (MINILM_INT8, MINILM)}
    load_seconds = time.perf_counter() - started
    files = corpus()
    counter = embedders[MINILM_INT8]
    started = time.perf_counter()
    all_chunks = chunk_corpus(files, counter, args.chunk_tokens, args.overlap)
    chunk_seconds = time.perf_counter() - started
    corpus_bytes = sum(len(data) for _, data in files)
    chunks = [chunk.text for chunk in all_chunks[: args.chunks]]
    sentences = sentences_of(files, args.sentences)
    queries = [f"What does {sentence[0].lower()}{sentence[1:-1]} mean?" for sentence in sentences[: args.queries]]
    windows = windows_of([chunk.text for chunk in all_chunks], counter, args.chunk_tokens, len(chunks))
    chunk_tokens = statistics.mean(counter.count_tokens(text) for text in chunks)
    window_tokens = statistics.mean(counter.count_tokens(text) for text in windows)
    sentence_tokens = statistics.mean(counter.count_tokens(text) for text in sentences)

    rows = []
    for name, embedder in embedders.items():
        embedder.embed_documents(chunks[:16])  # warm-up: first runs allocate
        rows.append(
            (
                name,
                rate(partial(embedder.embed_documents, sentences), len(sentences), args.repeats),
                rate(partial(embedder.embed_documents, chunks), len(chunks), args.repeats),
                rate(partial(embedder.embed_documents, windows), len(windows), args.repeats),
                query_latencies(embedder, queries),
            )
        )

    print(f"embedding benchmark · {machine()} · load average {os.getloadavg()[0]:.1f} at the end (shared machine)")
    print(
        f"real text: {len(files)} files, {corpus_bytes / 1e6:.2f} MB -> {len(all_chunks)} chunks of <= "
        f"{args.chunk_tokens} tokens (overlap {args.overlap}) in {chunk_seconds:.2f} s = "
        f"{len(all_chunks) / chunk_seconds:.0f} chunks/s load+chunk, {corpus_bytes / 1e6 / chunk_seconds:.1f} MB/s"
    )
    print(
        f"measured: {len(sentences)} sentences (mean {sentence_tokens:.0f} tokens), {len(chunks)} chunker chunks "
        f"(mean {chunk_tokens:.0f} tokens), {len(windows)} windows of {window_tokens:.0f} tokens, {len(queries)} "
        f"queries one at a time; rates are medians of {args.repeats} runs; models loaded in {load_seconds:.1f} s"
    )
    cores = os.cpu_count() or 1
    print(
        f"{'embedder':<24} {'sentences/s':>12} {'chunks/s':>9} {'100-tok/s':>10} {'query p50':>10} {'query p95':>10}"
        f"  {'CPU ms/100-tok':>14} {'idle-machine 100-tok/s':>22}"
    )
    for name, (sentence_rate, _), (chunk_rate, _), (window_rate, window_cpu), latencies in rows:
        p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        print(
            f"{name:<24} {sentence_rate:>12.0f} {chunk_rate:>9.0f} {window_rate:>10.0f} {p50:>8.1f}ms {p95:>8.1f}ms"
            f"  {window_cpu:>14.1f} {cores * 1000 / window_cpu:>22.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
