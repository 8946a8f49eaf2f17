"""Embeddings per second: all-minilm through the runtime's /api/embed and through the proxy, against the agent
host's own MiniLM in-process (sentence-transformers, fp32 torch).

Self-contained: starts its own PostgreSQL, one embedded runtime and a LiteLLM proxy with the hub and the repo's
config on free ports, and stops them. The same sentences (from Python's own docs) go to each side, in batches
of `--batch` texts and one text per request; every side is warmed up first (model loaded), then timed once.
Prints one table; compare the rows with each other (one run, one machine), not with another machine's times.

    .venv/bin/python bench/runtime_embed_bench.py [--texts 512] [--batch 32]
"""

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import machine, print_table

from agent_host.rag.embeddings import MINILM, SentenceTransformerEmbedder, minilm_path
from local_runtime.minilm import locate_minilm_gguf
from procs import MASTER_KEY, start_postgres, start_proxy, start_runtime

MODEL = "all-minilm"


def sentences(count: int) -> list[str]:
    """Real prose of mixed lengths: sentences of Python's own documentation topics."""
    from pydoc_data.topics import topics

    found: list[str] = []
    for text in topics.values():
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
            if 20 <= len(sentence) <= 400:
                found.append(sentence)
            if len(found) == count:
                return found
    return found


def batches(texts: list[str], size: int) -> list[list[str]]:
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def rate(embed: Callable[[list[str]], int], groups: list[list[str]]) -> float:
    """Texts per second over all groups, one request (or call) per group, in order."""
    embed(groups[0])  # warm-up: the model is loaded and its first batch run
    started = time.perf_counter()
    done = sum(embed(group) for group in groups)
    return done / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--singles", type=int, default=128, help="texts sent one per request")
    args = parser.parse_args()
    if locate_minilm_gguf() is None:
        print("all-minilm is not converted: run scripts/convert_minilm.sh (make setup does)", file=sys.stderr)
        return 1
    texts = sentences(args.texts)
    grouped, singles = batches(texts, args.batch), [[text] for text in texts[: args.singles]]

    host = SentenceTransformerEmbedder(MINILM, minilm_path())

    def in_process(group: list[str]) -> int:
        return len(host.embed_documents(group))

    rows: list[tuple[str, str, str]] = []
    rows.append(("agent host in-process, batches", f"{rate(in_process, grouped):.1f}", "texts/s"))
    rows.append(("agent host in-process, one text", f"{rate(in_process, singles):.1f}", "texts/s"))

    postgres = start_postgres()
    runtime, runtime_url = start_runtime(Path(tempfile.mkdtemp(prefix="embed-bench-models-")))
    proxy, proxy_url = start_proxy(MASTER_KEY, postgres.url("litellm"), runtime_url)
    try:
        with httpx.Client(timeout=300) as client:

            def api_embed(group: list[str]) -> int:
                reply = client.post(f"{runtime_url}/api/embed", json={"model": MODEL, "input": group})
                reply.raise_for_status()
                return len(reply.json()["embeddings"])

            def through_proxy(group: list[str]) -> int:
                reply = client.post(
                    f"{proxy_url}/v1/embeddings",
                    json={"model": MODEL, "input": group, "encoding_format": "float"},
                    headers={"Authorization": f"Bearer {MASTER_KEY}"},
                )
                reply.raise_for_status()
                return len(reply.json()["data"])

            rows.append(("runtime /api/embed, batches", f"{rate(api_embed, grouped):.1f}", "texts/s"))
            rows.append(("runtime /api/embed, one text", f"{rate(api_embed, singles):.1f}", "texts/s"))
            rows.append(("proxy /v1/embeddings, batches", f"{rate(through_proxy, grouped):.1f}", "texts/s"))
            rows.append(("proxy /v1/embeddings, one text", f"{rate(through_proxy, singles):.1f}", "texts/s"))
    finally:
        proxy.stop()
        runtime.stop()
        postgres.remove()
    title = (
        f"all-minilm embeddings, {len(texts)} sentences in batches of {args.batch}, {len(singles)} one at a time\n"
        f"machine: {machine()}"
    )
    print_table(title, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
