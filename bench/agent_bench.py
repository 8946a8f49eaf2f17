"""Benchmark agent runs: the tool-call round trip through the whole chain with the real model, and routing.

Round trip: agent host → proxy → runtime (smollm2:135m picks a tool) → tool → proxy → runtime (answer) → client,
for a built-in tool (calculator) and an MCP tool (the test server's `add` over streamable HTTP). Self-contained:
starts its own PostgreSQL, two runtimes, the LiteLLM proxy, the MCP server and an agent host on free ports
(or uses --proxy-url/--proxy-key/--database-url), and stops what it started. Prints one table.

    .venv/bin/python bench/agent_bench.py [--runs 10]
    .venv/bin/python bench/agent_bench.py --routing        # router accuracy and latency, no services needed
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# devstack, and the tests' process helpers (procs, host_support, mcp_support), when run as a script
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "agent_host"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import machine, percentile

from agent_host.agents.registry import load_agents
from agent_host.agents.router import RouteMode, Router
from agent_host.config import SERVICE_DIR
from agent_host.rag.embeddings import MINILM, SentenceTransformerEmbedder, minilm_path

MODEL = "smollm2:135m"
ADDER = {
    "name": "adder",
    "description": "Adds two whole numbers with the web server's add tool.",
    "tools": ["web__add"],
    "examples": [
        {
            "request": "What is 12 plus 30?",
            "tool": "web__add",
            "arguments": {"a": 12, "b": 30},
            "result": "42",
            "answer": "12 plus 30 is 42.",
        }
    ],
}
TASKS = {
    "calculator (built-in)": ("math", ["What is 37 * 91?", "What is 123 + 456?", "What is 2 to the power of 10?"]),
    "web__add (MCP, HTTP)": ("adder", ["What is 17 plus 25?", "What is 40 plus 2?", "What is 8 plus 13?"]),
}
# Requests none of which is an example in agents.yaml, with the agent each should reach.
ROUTING_CASES = [
    ("What's 45 plus 97?", "math"),
    ("Calculate 18% of 250", "math"),
    ("square root of 81?", "math"),
    ("How much is 7 cubed?", "math"),
    ("If I have 12 boxes of 24 eggs, how many eggs?", "math"),
    ("divide 1000 by 7", "math"),
    ("What's the time in New York right now?", "clock"),
    ("Which day of the week is it?", "clock"),
    ("Is it morning in Sydney now?", "clock"),
    ("today's date please", "clock"),
    ("Remember my locker code is 4412", "notes"),
    ("Save a note: buy milk", "notes"),
    ("Jot down: call mum on Sunday", "notes"),
    ("What did I tell you to remember?", "recall"),
    ("Show me my notes", "recall"),
    ("Which notes did I save?", "recall"),
    ("What does the contract say about termination?", "researcher"),
    ("Look up the safety instructions in the uploaded PDF", "researcher"),
    ("According to my files, when is the deadline?", "researcher"),
    ("Summarise the section on pricing from the report", "researcher"),
    ("Show the files in the shared directory", "toolbox"),
    ("Open readme.md from the folder", "toolbox"),
    ("Tell me a joke", "assistant"),
    ("Who wrote Hamlet?", "assistant"),
    ("Translate 'good morning' into Spanish", "assistant"),
    ("Give me three tips for sleeping better", "assistant"),
    ("hi there", "assistant"),
    ("What time is it in Berlin and how much is 15 * 15?", "planner"),
    ("Compute 2^16 and then save it as a note", "planner"),
    ("Check the date, then note it down", "planner"),
]


def timed_run(client: httpx.Client, host: str, key: str, agent: str, task: str) -> dict[str, float] | None:
    """Milliseconds from the request to the tool call, the tool result and the answer; None if no tool ran."""
    started = time.perf_counter()
    marks: dict[str, float] = {}
    body = {"task": task, "agent": agent, "stream": True}
    with client.stream("POST", f"{host}/agents/run", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            kind = event["type"]
            if kind in ("tool_call", "tool_result", "answer") and kind not in marks:
                marks[kind] = (time.perf_counter() - started) * 1000
            if kind == "tool_result":
                marks["tool"] = event["latency_ms"]
                marks["tool_error"] = float(event["is_error"])
            if kind == "error":
                raise RuntimeError(event["error"]["message"])
    return marks if "tool_result" in marks and "answer" in marks else None


def round_trips(args: argparse.Namespace) -> int:
    from host_support import HOST_KEY, start_host
    from mcp_support import http_entry, start_mcp_http_server, write_servers_file

    from procs import MASTER_KEY, start_postgres, start_proxy, start_runtime

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="agent-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        proxy_url, proxy_key, database_url = args.proxy_url, args.proxy_key, args.database_url
        if proxy_url is None:
            postgres = start_postgres()
            stack.callback(postgres.remove)
            first, first_url = start_runtime(tmp)
            stack.callback(first.stop)
            second, second_url = start_runtime(tmp)
            stack.callback(second.stop)
            proxy, proxy_url = start_proxy(MASTER_KEY, postgres.url("litellm"), first_url, second_url)
            stack.callback(proxy.stop)
            proxy_key, database_url = MASTER_KEY, postgres.url("genailabs")
        web, web_url = start_mcp_http_server("web")
        stack.callback(web.stop)
        config = yaml.safe_load((SERVICE_DIR / "agents.yaml").read_text())
        config["agents"].append(ADDER)
        (tmp / "agents.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        env = {
            "AGENTS_FILE": str(tmp / "agents.yaml"),
            "MCP_SERVERS_FILE": str(write_servers_file(tmp / "mcp.json", {"web": http_entry(web_url)})),
            "CHROMA_PATH": str(tmp / "chroma"),
            "MODEL_CACHE_DIR": str(tmp / "models"),
        }
        host, host_url = start_host(proxy_url, database_url, proxy_key, **env)
        stack.callback(host.stop)

        results: dict[str, list[dict[str, float] | None]] = {label: [] for label in TASKS}
        with httpx.Client(timeout=300) as client:
            for agent, tasks in TASKS.values():  # warm-up: model load, connections, MCP session
                timed_run(client, host_url, HOST_KEY, agent, tasks[0])
            for run in range(args.runs):
                for label, (agent, tasks) in TASKS.items():
                    results[label].append(timed_run(client, host_url, HOST_KEY, agent, tasks[run % len(tasks)]))

    print(f"agent round trip · {machine()} · model {MODEL} · {args.runs} streamed runs per tool, after one warm-up")
    header = f"{'tool':<22} {'called':>7} {'to call p50/p95':>17} {'tool p50/p95':>15} {'to answer p50/p95':>19}"
    print(header)
    for label, marks in results.items():
        done = [m for m in marks if m is not None]
        if not done:
            print(f"{label:<22} {'0/' + str(len(marks)):>7}   (the model never called the tool)")
            continue
        cells = []
        for key in ("tool_call", "tool", "answer"):
            values = [m[key] for m in done]
            cells.append(f"{statistics.median(values):.0f}/{percentile(values, 0.95):.0f} ms")
        called = f"{len(done)}/{len(marks)}"
        print(f"{label:<22} {called:>7} {cells[0]:>17} {cells[1]:>15} {cells[2]:>19}")
    return 0


async def routing() -> int:
    registry = load_agents(SERVICE_DIR / "agents.yaml")
    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder(MINILM, minilm_path())
    load_ms = (time.perf_counter() - started) * 1000

    async def source() -> SentenceTransformerEmbedder:
        return embedder

    print(f"agent routing · {machine()} · {len(ROUTING_CASES)} labelled requests · {MINILM} loaded in {load_ms:.0f} ms")
    print(f"{'method':<12} {'right':>7} {'p50':>9} {'p95':>9}  wrong")
    modes: list[RouteMode] = ["keywords", "embeddings", "both"]
    for mode in modes:
        router = Router(registry, source, mode)
        await router.route("warm up: embeds the agents' texts once")
        right, times, wrong = 0, [], []
        for text, expected in ROUTING_CASES:
            began = time.perf_counter()
            agent, _ = await router.route(text)
            times.append((time.perf_counter() - began) * 1000)
            right += agent.name == expected
            if agent.name != expected:
                wrong.append(f"{text!r}→{agent.name}")
        p50, p95 = statistics.median(times), percentile(times, 0.95)
        print(f"{mode:<12} {right:>3}/{len(ROUTING_CASES):<3} {p50:>7.2f}ms {p95:>7.2f}ms  {'; '.join(wrong)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--routing", action="store_true", help="measure the router instead")
    parser.add_argument("--proxy-url", help="use this proxy instead of starting one (with --proxy-key)")
    parser.add_argument("--proxy-key", default="")
    parser.add_argument("--database-url", default="postgresql://litellm:litellm@localhost:5433/genailabs")
    args = parser.parse_args()
    if args.routing:
        return asyncio.run(routing())
    return round_trips(args)


if __name__ == "__main__":
    sys.exit(main())
