"""Cooldowns of the smollm2 group's deployments, for each runtime count `make up` runs.

One runtime (the default): its only deployment is never rested, so once the runtime answers again (restarted, or
past a runner crash that cost a few requests a 503) chats go through at once, not after the router's cooldown.
Two runtimes (RUNTIME_REPLICAS=2): one that keeps failing rests, and the other answers everything meanwhile.

The runtimes here are scripted Ollamas (the model is the only fake): one dies and comes back on its port within a
second, and answers 503 on cue, which a real one cannot promise.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hub_support import MASTER_KEY, bearer, chat_body

from devstack.probe import free_port, http_ok
from procs import PYTHON, ManagedProcess, RedisInstance, scaled, start_proxy, start_redis

# Ollama's /api/chat as LiteLLM's ollama_chat provider reads it (stream: false) and the probes around it. Every
# chat answers 503 while the file named by its second argument exists; GET /chats counts the chats it received.
SCRIPTED_OLLAMA = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

chats = 0

class Handler(BaseHTTPRequestHandler):
    def _answer(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer({"/api/version": {"version": "0.0.0"}, "/chats": {"chats": chats}}.get(self.path, {"models": []}))

    def do_POST(self):
        global chats
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path != "/api/chat":
            self._answer({})
            return
        chats += 1
        if os.path.exists(sys.argv[2]):
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._answer({
            "model": request.get("model"), "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "Hi"}, "done": True, "done_reason": "stop",
            "prompt_eval_count": 5, "eval_count": 1,
        })

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@dataclass
class ScriptedRuntime:
    process: ManagedProcess
    url: str
    # While this file exists every chat is answered 503 (as when the runtime's runner died).
    failing: Path

    def chats(self) -> int:
        return int(httpx.get(f"{self.url}/chats", timeout=5).json()["chats"])


def _start_runtime(directory: Path) -> ScriptedRuntime:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    failing = directory / "failing"
    argv = [PYTHON, "-c", SCRIPTED_OLLAMA, str(port), str(failing)]
    process = ManagedProcess(f"scripted-ollama:{port}", argv, health=lambda: http_ok(f"{url}/api/version"))
    process.start()
    return ScriptedRuntime(process, url, failing)


@pytest.fixture(scope="module")
def runtimes_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScriptedRuntime, ScriptedRuntime]]:
    first, second = (_start_runtime(tmp_path_factory.mktemp("runtime")) for _ in range(2))
    yield first, second
    for runtime in (first, second):
        runtime.process.stop()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisInstance]:
    """Their own: cooldowns and fail counts live in Redis, keyed by deployment id, which other test proxies share."""
    instance = start_redis()
    yield instance
    instance.remove()


@pytest.fixture(scope="module")
def one_runtime_proxy(
    runtimes_pair: tuple[ScriptedRuntime, ScriptedRuntime], redis: RedisInstance, database_url: str
) -> Iterator[httpx.Client]:
    process, base_url = start_proxy(MASTER_KEY, database_url, runtimes_pair[0].url, redis_url=redis.url)
    with httpx.Client(base_url=base_url, timeout=scaled(60), headers=bearer(MASTER_KEY)) as client:
        yield client
    process.stop()


def _chat(proxy: httpx.Client) -> httpx.Response:
    return proxy.post("/v1/chat/completions", json=chat_body(max_tokens=2))


def test_one_runtime_is_the_groups_only_deployment(one_runtime_proxy: httpx.Client) -> None:
    for _ in range(3):
        reply = _chat(one_runtime_proxy)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-litellm-model-id"] == "smollm2-135m-runtime1"


def test_a_restarted_runtime_is_answered_through_at_once(
    one_runtime_proxy: httpx.Client, runtimes_pair: tuple[ScriptedRuntime, ScriptedRuntime]
) -> None:
    runtime = runtimes_pair[0]
    runtime.process.kill()
    failed = [_chat(one_runtime_proxy).status_code for _ in range(4)]
    assert all(status >= 500 for status in failed), failed
    runtime.process.start()
    reply = _chat(one_runtime_proxy)
    assert reply.status_code == 200, reply.text


def test_after_a_burst_of_503s_the_only_runtime_is_answered_through_at_once(
    one_runtime_proxy: httpx.Client, runtimes_pair: tuple[ScriptedRuntime, ScriptedRuntime]
) -> None:
    runtime = runtimes_pair[0]
    runtime.failing.touch()
    try:
        # More failures than allowed_fails (2) within cooldown_time (30 s): set router-wide, that would now rest
        # the group's only deployment and answer 429 for 30 s after the runtime recovered.
        failed = [_chat(one_runtime_proxy).status_code for _ in range(4)]
    finally:
        runtime.failing.unlink()
    assert all(status >= 500 for status in failed), failed
    reply = _chat(one_runtime_proxy)
    assert reply.status_code == 200, reply.text


def test_with_two_runtimes_one_that_keeps_failing_rests_and_the_other_answers(
    runtimes_pair: tuple[ScriptedRuntime, ScriptedRuntime], redis: RedisInstance, database_url: str
) -> None:
    healthy, failing = runtimes_pair
    process, base_url = start_proxy(MASTER_KEY, database_url, healthy.url, failing.url, redis_url=redis.url)
    try:
        with httpx.Client(base_url=base_url, timeout=scaled(60), headers=bearer(MASTER_KEY)) as proxy:
            before = failing.chats()
            failing.failing.touch()
            try:
                replies = [_chat(proxy) for _ in range(30)]
                tried = failing.chats() - before
            finally:
                failing.failing.unlink()
    finally:
        process.stop()
    assert [reply.status_code for reply in replies] == [200] * 30  # each one it failed was sent to the other
    assert {reply.headers["x-litellm-model-id"] for reply in replies} == {"smollm2-135m-runtime1"}
    # Rested after its third failure (one more chat: a background health check may fall in): without the cooldown
    # it would have been tried for about half the chats (5 or fewer of 30 by chance: about 1 in 6000).
    assert 3 <= tried <= 5, tried
