"""Benchmark the agent host: latency it adds over calling the proxy directly, and session load + prompt build.

Against the `make up` stack by default (proxy on 4100, agent host on 8000, keys from litellm_hub/.env and
.stack/agent_host.keys). Prints one table; stops by itself.

    .venv/bin/python bench/agent_host_bench.py [--runs 30] [--host-url ...] [--proxy-url ...] [--turns 500]
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devstack, when run as a script

from benchlib import machine, percentile

from agent_host.config import Settings
from agent_host.context.tokens import TokenCounter
from agent_host.db import owner_id
from agent_host.pipeline.chat import ChatPipeline
from agent_host.schemas import ChatCompletionRequest, SessionCreate
from agent_host.sessions.store import NewMessage, SessionStore, open_pool
from devstack.config import get_settings as stack_settings
from devstack.hostkeys import load_keys
from genailabs_accounts.store import AccountStore

MODEL = "smollm2:135m"


def body(stream: bool) -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "stream": stream}


def timed_complete(client: httpx.Client, url: str, key: str) -> float:
    started = time.perf_counter()
    response = client.post(f"{url}/v1/chat/completions", json=body(False), headers={"Authorization": f"Bearer {key}"})
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def timed_first_token(client: httpx.Client, url: str, key: str) -> float:
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}"}
    with client.stream("POST", f"{url}/v1/chat/completions", json=body(True), headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("stream ended without a chunk")


def compare(
    measure: Callable[[httpx.Client, str, str], float], runs: int, proxy: tuple[str, str], host: tuple[str, str]
) -> tuple[list[float], list[float]]:
    """Alternates proxy and host calls so both see the same machine load."""
    direct: list[float] = []
    via_host: list[float] = []
    with httpx.Client(timeout=120) as client:
        measure(client, *proxy), measure(client, *host)  # warm-up: connections, model load, catalog cache
        for _ in range(runs):
            direct.append(measure(client, *proxy))
            via_host.append(measure(client, *host))
    return direct, via_host


async def session_build(settings: Settings, turns: int, repeats: int) -> list[float]:
    """Loads a `turns`-turn session and builds its prompt in-process (no model call: the window holds it all)."""
    database_url = settings.database_url.get_secret_value()
    accounts = AccountStore(database_url, database_url.rsplit("/", 1)[0] + "/litellm")
    try:
        person = accounts.first_admin()  # the session is the first admin's, as the operator key's would be
    finally:
        accounts.close()
    if person is None:
        raise SystemExit("no admin account yet: run `make up` (or python -m genailabs_accounts users ensure-admin)")
    owner = owner_id(person)
    pool = await open_pool(database_url, 5.0)
    await pool.wait(timeout=10)
    store = SessionStore(pool)

    class WideCatalog:
        async def window(self, model: str) -> int:
            return 1_000_000

    counter = TokenCounter()
    pipeline = ChatPipeline(None, store, WideCatalog(), counter, settings)  # type: ignore[arg-type]
    session = await store.create(owner, SessionCreate(title="bench"))
    text = "This is a typical chat message of a couple of dozen words, about the weather and the plans for the day."
    tokens = counter.count(MODEL, text)
    rows = [NewMessage(role, text, tokens) for _ in range(turns) for role in ("user", "assistant")]
    await store.append(owner, session.id, rows)
    request = ChatCompletionRequest.model_validate(
        {"model": MODEL, "messages": [{"role": "user", "content": "And tomorrow?"}], "session_id": session.id}
    )
    timings = []
    try:
        await pipeline.prepare(request, person)  # warm-up: tokenizer load, prepared statements
        for _ in range(repeats):
            started = time.perf_counter()
            turn = await pipeline.prepare(request, person)
            timings.append((time.perf_counter() - started) * 1000)
        assert turn.facts.history_messages == 2 * turns
    finally:
        await store.delete(owner, session.id)
        await pool.close()
    return timings


def main() -> int:
    stack = stack_settings()
    keys = load_keys(stack) or {}
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proxy-url", default=stack.proxy_url)
    # The host's own virtual key, so both paths pay the hub's key check alike (the master key skips it).
    parser.add_argument("--proxy-key", default=keys.get("AGENT_HOST_PROXY_KEY", stack.litellm_master_key))
    parser.add_argument("--host-url", default=stack.agent_host_url)
    parser.add_argument("--host-key", default=keys.get("AGENT_HOST_API_KEY", os.environ.get("AGENT_HOST_API_KEY", "")))
    parser.add_argument("--database-url", default=stack.database_url.rsplit("/", 1)[0] + "/genailabs")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--turns", type=int, default=500)
    args = parser.parse_args()
    if not args.host_key:
        print("agent_host_bench: no agent host key: run `make up` first or pass --host-key", file=sys.stderr)
        return 1
    proxy, host = (args.proxy_url, args.proxy_key), (args.host_url, args.host_key)
    try:
        rows = []
        for label, measure in (("non-streaming total", timed_complete), ("streaming TTFT", timed_first_token)):
            direct, via_host = compare(measure, args.runs, proxy, host)
            added = statistics.median(via_host) - statistics.median(direct)
            rows.append(
                (
                    label,
                    statistics.median(direct),
                    percentile(direct, 0.95),
                    statistics.median(via_host),
                    percentile(via_host, 0.95),
                    added,
                )
            )
        host_settings = Settings(
            agent_host_api_key=args.host_key, agent_host_proxy_key="unused", database_url=args.database_url
        )  # type: ignore[arg-type]
        build = asyncio.run(session_build(host_settings, args.turns, max(10, args.runs)))
    except (httpx.HTTPError, OSError) as exc:
        print(f"agent_host_bench: the stack did not answer ({exc}); is `make up` running?", file=sys.stderr)
        return 1

    print(f"agent host benchmark · {machine()} · {args.runs} runs each, max_tokens 1, model {MODEL}")
    print(f"{'measure':<22} {'proxy p50':>10} {'proxy p95':>10} {'host p50':>10} {'host p95':>10} {'added p50':>10}")
    for label, d50, d95, h50, h95, added in rows:
        target = "ok" if added < 10 else "over 10 ms"
        print(f"{label:<22} {d50:>8.1f}ms {d95:>8.1f}ms {h50:>8.1f}ms {h95:>8.1f}ms {added:>8.1f}ms  {target}")
    b50, b95 = statistics.median(build), percentile(build, 0.95)
    target = "ok" if b50 < 20 else "over 20 ms"
    print(f"{args.turns}-turn session load + prompt build: p50 {b50:.1f} ms, p95 {b95:.1f} ms  {target}")
    print(f"token counts: {TokenCounter().source(MODEL)} tokenizer for {MODEL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
