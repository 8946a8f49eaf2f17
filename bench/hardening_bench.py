"""Hostile clients against the running stack: what each service answers, whether it stays up, how fast it recovers.

Against the `make up` stack (runtime 11434, proxy 4100, agent host 8000; keys from litellm_hub/.env and
.stack/agent_host.keys). Per service it sends a fixed set of hostile requests (schema bombs, oversized bodies,
foreign origins, malformed input, other LiteLLM routes with a restricted key, hostile uploads), counts the 5xx
answers and checks the service still answers; during the hostile uploads it polls the agent host's /health and
keeps the longest stall; then it crashes each service (SIGSEGV to the process supervisord runs) and times how long
until it answers again. Prints one table; stops by itself; leaves the stack as it found it (the restricted key
and the bench collection are removed).

    .venv/bin/python bench/hardening_bench.py [--crashes 3] [--no-crash]
"""

import argparse
import io
import json
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devstack, when run as a script

import contextlib

from benchlib import machine

from devstack.config import get_settings
from devstack.hostkeys import hub_keys, load_keys
from devstack.supervisor import Supervisor

BOMB = {"type": "object", "properties": {"s": {"type": "string", "maxLength": 100_000}}, "required": ["s"]}
DEEP: dict[str, Any] = {"type": "string"}
for _ in range(200):
    DEEP = {"type": "array", "items": DEEP}
MODEL = "smollm2:135m"
ALIAS = "hardening-bench"


@dataclass
class Tally:
    service: str
    tried: int = 0
    server_errors: list[str] = field(default_factory=list)
    alive_after: bool = False
    longest_health_stall_ms: float | None = None
    recovery_s: list[float] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    def hit(self, label: str, response: httpx.Response | Exception) -> None:
        self.tried += 1
        status = type(response).__name__ if isinstance(response, Exception) else str(response.status_code)
        self.answers.append(f"{label} {status}")
        if isinstance(response, Exception):
            self.server_errors.append(f"{label}: {type(response).__name__}")
        elif response.status_code >= 500:
            self.server_errors.append(f"{label}: {response.status_code}")


def send(tally: Tally, client: httpx.Client, label: str, method: str, url: str, **kwargs: Any) -> None:
    try:
        tally.hit(label, client.request(method, url, **kwargs))
    except httpx.HTTPError as exc:
        tally.hit(label, exc)


def alive(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=5).is_success
    except httpx.HTTPError:
        return False


def runtime_attacks(client: httpx.Client, base: str) -> Tally:
    tally = Tally("runtime")
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    bodies: list[tuple[str, str, dict[str, Any]]] = [
        ("format schema bomb", "/api/chat", {**chat, "format": BOMB}),
        ("format deep nesting", "/api/chat", {**chat, "format": DEEP}),
        ("pattern repetition", "/api/chat", {**chat, "format": {"type": "string", "pattern": "a{1,99999}"}}),
        (
            "response_format bomb",
            "/v1/chat/completions",
            {**chat, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": BOMB}}},
        ),
        (
            "tool parameters bomb",
            "/api/chat",
            {**chat, "tools": [{"type": "function", "function": {"name": "f", "parameters": BOMB}}]},
        ),
        (
            "num_ctx huge",
            "/api/generate",
            {"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_ctx": 10_000_000, "num_predict": 1}},
        ),
        (
            "num_predict huge",
            "/api/generate",
            {
                "model": MODEL,
                "prompt": "hi",
                "stream": False,
                "options": {"num_predict": 10_000_000, "stop": ["\n", "."]},
            },
        ),
        ("max_tokens huge", "/v1/chat/completions", {**chat, "max_tokens": 10**9, "stop": ["\n", "."]}),
        ("messages not a list", "/api/chat", {"model": MODEL, "messages": "hi"}),
        ("unknown model", "/api/chat", {**chat, "model": "nope:1b"}),
    ]
    for label, path, body in bodies:
        send(tally, client, label, "POST", base + path, json=body)
    bomb = json.dumps({**chat, "format": BOMB})
    send(
        tally,
        client,
        "bomb as text/plain",
        "POST",
        f"{base}/api/chat",
        content=bomb,
        headers={"Content-Type": "text/plain"},
    )
    send(
        tally,
        client,
        "foreign origin",
        "POST",
        f"{base}/api/chat",
        json=chat,
        headers={"Origin": "https://evil.example"},
    )
    send(tally, client, "20 MB body", "POST", f"{base}/api/chat", content=b"{" + b" " * 20_000_000 + b"}")
    send(tally, client, "invalid JSON", "POST", f"{base}/api/chat", content=b"{nope")
    tally.alive_after = alive(f"{base}/api/version")
    return tally


def proxy_attacks(client: httpx.Client, base: str, master: str) -> Tally:
    tally = Tally("proxy")
    created = hub_keys(get_settings(), "create", "--alias", ALIAS, "--models", MODEL)
    restricted = created.stdout.strip().splitlines()[0] if created.returncode == 0 else master
    try:
        key = {"Authorization": f"Bearer {restricted}"}
        chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": BOMB}}
        send(
            tally,
            client,
            "schema bomb",
            "POST",
            f"{base}/v1/chat/completions",
            json={**chat, "response_format": response_format},
            headers=key,
        )
        for path in (
            "/v1/messages",
            "/v1beta/models/x:generateContent",
            "/key/generate",
            "/ollama/api/tags",
            "/openai/v1/models",
            "/config/update",
            "/user/new",
            "/spend/logs",
        ):
            send(tally, client, f"restricted key {path}", "POST", base + path, json={"model": MODEL}, headers=key)
        send(
            tally,
            client,
            "other model",
            "POST",
            f"{base}/v1/chat/completions",
            json={**chat, "model": "phi:latest"},
            headers=key,
        )
        send(tally, client, "no key", "POST", f"{base}/v1/chat/completions", json=chat)
        send(tally, client, "query-string key", "POST", f"{base}/v1/chat/completions?api_key={restricted}", json=chat)
    finally:
        hub_keys(get_settings(), "revoke", ALIAS)
    tally.alive_after = alive(f"{base}/health/liveliness")
    return tally


def docx_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<w:document>" + b" " * 150_000_000 + b"</w:document>")
    return buffer.getvalue()


def host_attacks(client: httpx.Client, base: str, key: str, admin: str | None) -> Tally:
    tally = Tally("agent_host")
    auth = {"Authorization": f"Bearer {key}"}
    stalls: list[float] = []
    stop = threading.Event()

    def watch_health() -> None:
        with httpx.Client(timeout=60) as watcher:
            while not stop.is_set():
                started = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    watcher.get(f"{base}/health")
                stalls.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)

    collection = "hardening-bench"
    client.delete(f"{base}/rag/collections/{collection}", headers=auth)
    client.post(f"{base}/rag/collections", json={"name": collection}, headers=auth)
    hostile: list[tuple[str, bytes, str]] = [
        ("spaces.txt", b" " * 600_000, "text/plain"),
        ("tabs.txt", b"\t" * 600_000, "text/plain"),
        ("hashes.md", b"#" * 600_000, "text/markdown"),
        ("newlines.md", b"\n" * 600_000, "text/markdown"),
        ("one-line.html", b"<p>" + b"a " * 500_000 + b"</p>", "text/html"),
        ("bomb.docx", docx_bomb(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ]
    watcher = threading.Thread(target=watch_health, daemon=True)
    watcher.start()
    try:
        for name, data, kind in hostile:
            send(
                tally,
                client,
                f"upload {name}",
                "POST",
                f"{base}/rag/collections/{collection}/documents",
                params={"wait": "true"},
                files=[("files", (name, data, kind))],
                headers=auth,
            )
    finally:
        stop.set()
        watcher.join()
    tally.longest_health_stall_ms = max(stalls) if stalls else None
    client.delete(f"{base}/rag/collections/{collection}", headers=auth)

    stdio = {"name": "p", "config": {"command": "sh", "args": ["-c", "touch /tmp/hardening-bench-pwned"]}}
    for label, headers in (
        ("stdio MCP server", auth),
        ("stdio MCP server, admin", {"Authorization": f"Bearer {admin}"}),
    ):
        if label.endswith("admin") and not admin:
            continue
        send(tally, client, label, "POST", f"{base}/mcp/servers", json=stdio, headers=headers)
    metadata = {"name": "m", "config": {"url": "http://169.254.169.254/latest/meta-data"}}
    send(
        tally,
        client,
        "metadata MCP URL",
        "POST",
        f"{base}/mcp/servers",
        json=metadata,
        headers={"Authorization": f"Bearer {admin or key}"},
    )
    send(tally, client, "sessions limit=-65", "GET", f"{base}/sessions", params={"limit": -65}, headers=auth)
    send(
        tally,
        client,
        "PATCH unknown fields",
        "PATCH",
        f"{base}/sessions/00000000-0000-0000-0000-000000000000",
        json={"nope": 1},
        headers=auth,
    )
    send(
        tally,
        client,
        "malformed content parts",
        "POST",
        f"{base}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": [{"type": "image", "x": 1}]}]},
        headers=auth,
    )
    send(tally, client, "query-string key on HTTP", "GET", f"{base}/sessions", params={"api_key": key})
    send(
        tally,
        client,
        "calculator bomb",
        "POST",
        f"{base}/agents/run",
        json={"task": "round(1, -10**8)", "agent": "math", "stream": False},
        headers=auth,
        timeout=300,
    )
    tally.alive_after = alive(f"{base}/health") and not Path("/tmp/hardening-bench-pwned").exists()
    return tally


def time_recovery(supervisor: Supervisor, name: str, ready: Callable[[], bool], crashes: int) -> list[float]:
    """SIGSEGV to the service's process, then seconds until it answers again; `crashes` times in a row."""
    times = []
    for _ in range(crashes):
        info = supervisor.info(name)
        if not info or not info.get("pid"):
            break
        os.kill(int(str(info["pid"])), signal.SIGSEGV)
        started = time.monotonic()
        time.sleep(0.2)
        while not ready():
            if time.monotonic() - started > 300:
                return [*times, float("inf")]
            time.sleep(0.1)
        times.append(time.monotonic() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crashes", type=int, default=3, help="crashes in a row per service")
    parser.add_argument("--no-crash", action="store_true", help="skip the crash-recovery part")
    args = parser.parse_args()
    settings = get_settings()
    keys = load_keys(settings) or {}
    master = settings.litellm_master_key
    runtime_url, proxy_url, host_url = settings.ollama_base_url, settings.proxy_url, settings.agent_host_url
    with httpx.Client(timeout=300) as client:
        tallies = [
            runtime_attacks(client, runtime_url),
            proxy_attacks(client, proxy_url, master),
            host_attacks(client, host_url, keys.get("AGENT_HOST_API_KEY", ""), keys.get("AGENT_HOST_ADMIN_KEY")),
        ]
    if not args.no_crash:
        supervisor = Supervisor(settings)
        master_auth = {"Authorization": f"Bearer {master}"}
        checks: dict[str, Callable[[], bool]] = {
            "runtime": lambda: alive(f"{runtime_url}/api/version"),
            "proxy": lambda: alive(f"{proxy_url}/v1/models", master_auth),
            "agent_host": lambda: alive(f"{host_url}/health"),
        }
        for tally in tallies:
            tally.recovery_s = time_recovery(supervisor, tally.service, checks[tally.service], args.crashes)

    print(f"\nhardening: hostile requests per service, then {args.crashes} SIGSEGV crashes in a row each")
    print(f"machine: {machine()}\n")
    print(f"| {'service':<10} | tried | 5xx | alive after | longest /health stall | recovery after crash (s) |")
    print(f"|{'-' * 12}|-------|-----|-------------|-----------------------|--------------------------|")
    for tally in tallies:
        stall = f"{tally.longest_health_stall_ms:.0f} ms" if tally.longest_health_stall_ms is not None else "-"
        recovery = ", ".join(f"{s:.1f}" for s in tally.recovery_s) or "-"
        print(
            f"| {tally.service:<10} | {tally.tried:>5} | {len(tally.server_errors):>3} | "
            f"{'yes' if tally.alive_after else 'NO':<11} | {stall:<21} | {recovery:<24} |"
        )
    print("\nwhat each hostile request got:")
    for tally in tallies:
        print(f"  {tally.service}: " + "; ".join(tally.answers))


if __name__ == "__main__":
    main()
