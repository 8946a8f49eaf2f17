"""Benchmark MCP in the agent host: tool discovery for 5 servers, tool-call latency through the manager, host memory.

Self-contained: starts its own MCP servers (the example files server over stdio, the tests' server over streamable
HTTP) and its own agent host processes on free ports; chat is never used, so no proxy is needed, and sessions use
--database-url (the `make up` Postgres by default; an unreachable one only makes the host log warnings).
Prints one table; stops everything it started.

    .venv/bin/python bench/mcp_bench.py [--runs 5] [--calls 200]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devstack, when run as a script

from benchlib import machine, percentile

from agent_host.config import Settings
from agent_host.mcp.manager import McpManager, open_mcp
from devstack.probe import free_port, http_ok, port_in_use, wait_until

ROOT = Path(__file__).resolve().parent.parent
HTTP_SERVER = ROOT / "tests" / "agent_host" / "mcp_http_server.py"
HOST_KEY = "sk-mcp-bench"
SERVERS = 5


def stdio_entry(root: Path) -> dict[str, Any]:
    return {"command": "python", "args": ["-m", "agent_host.mcp.examples.files_server", "--root", str(root)]}


def servers_file(path: Path, servers: dict[str, dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def settings(path: Path) -> Settings:
    return Settings(agent_host_api_key=HOST_KEY, agent_host_proxy_key="unused", mcp_servers_file=path)  # type: ignore[arg-type]


def port_open(port: int) -> str | None:
    return None if port_in_use(port) else f"port {port} not open yet"


@contextmanager
def http_servers(count: int) -> Iterator[list[str]]:
    """`count` test MCP servers over streamable HTTP, each its own process; yields their /mcp URLs."""
    procs, urls = [], []
    try:
        for index in range(count):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(HTTP_SERVER), "--port", str(port), "--name", f"web{index}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}/mcp")
            if wait_until(partial(port_open, port), 30) is not None:
                raise RuntimeError(f"the HTTP MCP server on {port} did not start")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


async def discovery(path: Path) -> tuple[dict[str, float], float]:
    """open_mcp until every server's tools are listed: ms per server, and in total."""
    started = time.perf_counter()
    ready: dict[str, float] = {}
    async with open_mcp(settings(path)) as manager:

        async def settle(name: str) -> None:
            await manager.server(name).settled.wait()
            ready[name] = (time.perf_counter() - started) * 1000
            if manager.server(name).status != "up":
                raise RuntimeError(f"{name} is down: {manager.server(name).error}")

        await asyncio.gather(*(settle(server.name) for server in manager.servers()))
        total = (time.perf_counter() - started) * 1000
        assert len(manager.tools()) >= SERVERS * 4
    return ready, total


async def call_latency(manager: McpManager, tool: str, arguments: dict[str, Any], calls: int) -> list[float]:
    for _ in range(10):  # warm-up
        await manager.call(tool, arguments)
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        outcome = await manager.call(tool, arguments)
        timings.append((time.perf_counter() - started) * 1000)
        if outcome.is_error:
            raise RuntimeError(f"{tool} failed: {outcome.text}")
    return timings


async def latencies(tmp: Path, http_url: str, calls: int) -> dict[str, list[float]]:
    (tmp / "notes").mkdir(exist_ok=True)
    (tmp / "notes" / "hello.md").write_text("hello from the notes folder\n")
    path = servers_file(tmp / "calls.json", {"files": stdio_entry(tmp / "notes"), "web": {"url": http_url}})
    async with open_mcp(settings(path)) as manager:
        await manager.wait_ready(60)
        return {
            "stdio files__read_file": await call_latency(manager, "files__read_file", {"path": "hello.md"}, calls),
            "http web__echo": await call_latency(manager, "web__echo", {"text": "hello"}, calls),
        }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def host_memory(tmp: Path, path: Path, database_url: str, expect: int) -> tuple[float, float, int]:
    """Starts a host on `path`, waits for its servers and a steady RSS: (host MB, children MB, children)."""
    port = free_port()
    env = {
        **os.environ,
        "AGENT_HOST_API_KEY": HOST_KEY,
        "AGENT_HOST_PROXY_KEY": "unused",
        "LITELLM_BASE_URL": "http://127.0.0.1:9/v1",
        "DATABASE_URL": database_url,
        "MCP_SERVERS_FILE": str(path),
        "CHROMA_PATH": str(tmp / f"chroma-{port}"),
        "MODEL_CACHE_DIR": str(tmp / "models"),
    }
    argv = [sys.executable, "-m", "agent_host", "--port", str(port)]
    host = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        if wait_until(lambda: http_ok(f"{url}/health"), 90) is not None:
            raise RuntimeError("the agent host did not start")

        def servers_up() -> str | None:
            listed = httpx.get(f"{url}/mcp/servers", headers={"Authorization": f"Bearer {HOST_KEY}"}, timeout=10)
            up = sum(server["status"] == "up" for server in listed.json())
            return None if up == expect else f"{up} of {expect} up"

        if wait_until(servers_up, 60) is not None:
            raise RuntimeError("the MCP servers did not come up")
        samples = [rss_mb(host.pid)]
        for _ in range(60):  # steady: background warm-ups (RAG's embedding model) have finished
            time.sleep(1)
            samples.append(rss_mb(host.pid))
            if len(samples) >= 4 and max(samples[-4:]) - min(samples[-4:]) < 1.0:
                break
        children = psutil.Process(host.pid).children(recursive=True)
        return samples[-1], sum(rss_mb(child.pid) for child in children), len(children)
    finally:
        host.terminate()
        host.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="discovery runs per transport")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per transport")
    parser.add_argument("--database-url", default="postgresql://litellm:litellm@localhost:5433/genailabs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as name, http_servers(SERVERS) as urls:
        tmp = Path(name)
        stdio = servers_file(tmp / "stdio.json", {f"s{i}": stdio_entry(tmp / f"notes{i}") for i in range(SERVERS)})
        http = servers_file(tmp / "http.json", {f"s{i}": {"url": url} for i, url in enumerate(urls)})
        found: dict[str, list[tuple[dict[str, float], float]]] = {"stdio": [], "http": []}
        for _ in range(args.runs):
            for transport, path in (("stdio", stdio), ("http", http)):
                found[transport].append(asyncio.run(discovery(path)))
        calls = asyncio.run(latencies(tmp, urls[0], args.calls))
        empty = servers_file(tmp / "none.json", {})
        memory = [
            ("0 servers", host_memory(tmp, empty, args.database_url, 0)),
            (f"{SERVERS} stdio servers", host_memory(tmp, stdio, args.database_url, SERVERS)),
        ]

    print(f"MCP benchmark · {machine()} · {args.runs} discovery runs, {args.calls} calls each")
    heads = " ".join(f"{f's{i}':>8}" for i in range(SERVERS))
    print(f"{'discovery (open_mcp → tools listed)':<38} {heads}    total")
    for transport, runs in found.items():
        per_server = [statistics.median(run[0][f"s{i}"] for run in runs) for i in range(SERVERS)]
        total = statistics.median(run[1] for run in runs)
        cells = " ".join(f"{value:>6.0f}ms" for value in per_server)
        print(f"{SERVERS} {transport} servers, median of {len(runs):<15} {cells} {total:>6.0f}ms")
    print(f"{'tool call through McpManager':<38} {'p50':>8} {'p95':>8} {'mean':>8}")
    for label, timings in calls.items():
        p50, p95, mean = statistics.median(timings), percentile(timings, 0.95), statistics.fmean(timings)
        print(f"{label:<38} {p50:>6.2f}ms {p95:>6.2f}ms {mean:>6.2f}ms")
    print(f"{'agent host RSS (VmRSS)':<38} {'host':>8} {'children':>9}")
    for label, (host, children, count) in memory:
        print(f"{label:<38} {host:>6.0f}MB {children:>7.0f}MB  ({count} child processes)")
    delta = memory[1][1][0] - memory[0][1][0]
    print(f"host RSS added by {SERVERS} connected stdio servers: {delta:+.0f} MB (their own processes counted apart)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
