"""Runners under load: parallel slots that never mix outputs, a gone client that frees its slot, a runner's
death that costs only its own requests, idle runners unloaded, a runner per model."""

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from runtime_support import GREEDY, MODEL, RuntimeProcess, smollm2_gguf

from procs import scaled, start_runtime

pytestmark = pytest.mark.timeout(180)
PROMPTS = [
    "Name a fruit.",
    "Name a planet.",
    "What is 2 plus 2?",
    "Say hi to Bob.",
    "Name a colour.",
    "Name a river.",
    "Describe snow.",
    "Name a bird.",
]
COUNTING = {
    "model": MODEL,
    "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
    "raw": True,
    "options": {"temperature": 0, "repeat_penalty": 1.0, "num_predict": 1500},
}


def chat_body(prompt: str, stream: bool) -> dict[str, object]:
    messages = [{"role": "user", "content": prompt}]
    return {"model": MODEL, "messages": messages, "stream": stream, "options": {**GREEDY, "num_predict": 24}}


def timed_stream(base_url: str, prompt: str) -> tuple[str, float, float]:
    """The streamed answer, when its first piece of text arrived and when the stream ended."""
    first = 0.0
    pieces = []
    with (
        httpx.Client(base_url=base_url, timeout=120) as client,
        client.stream("POST", "/api/chat", json=chat_body(prompt, stream=True)) as response,
    ):
        for line in response.iter_lines():
            chunk = json.loads(line)
            if chunk["message"]["content"] and not first:
                first = time.monotonic()
            pieces.append(chunk["message"]["content"])
    assert chunk["done"], chunk
    return "".join(pieces), first, time.monotonic()


def runners(runtime: RuntimeProcess) -> list[psutil.Process]:
    """The runtime's llama-server processes."""
    assert runtime.process.proc is not None
    return [child for child in psutil.Process(runtime.process.proc.pid).children() if "llama-server" in child.name()]


def test_eight_streams_run_at_once_each_with_its_own_answer(runtime: RuntimeProcess, http: httpx.Client) -> None:
    """Eight slots batched together: every stream's first token comes before any stream is done, and each
    answer is the one its prompt gets alone (greedy and seeded, so any mix-up would show)."""
    alone = [
        http.post("/api/chat", json=chat_body(prompt, stream=False)).json()["message"]["content"] for prompt in PROMPTS
    ]
    assert len(set(alone)) == len(PROMPTS)
    with ThreadPoolExecutor(max_workers=len(PROMPTS)) as pool:
        together = list(pool.map(lambda prompt: timed_stream(runtime.url, prompt), PROMPTS))
    assert [answer for answer, _, _ in together] == alone
    last_first_token = max(first for _, first, _ in together)
    first_end = min(end for _, _, end in together)
    assert last_first_token < first_end, "a stream waited for another to finish before it started"
    assert len(runners(runtime)) == 1  # one runner holds all eight


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """A runtime whose runners have one slot: a second request waits in the runner's queue."""
    process, url = start_runtime(
        tmp_path_factory.mktemp("one-slot-models"), RUNTIME_THREADS="1", RUNTIME_NUM_PARALLEL="1"
    )
    try:
        yield RuntimeProcess(process, url)
    finally:
        process.stop()


def test_disconnect_mid_stream_frees_the_slot_for_the_next_request(one_slot: RuntimeProcess) -> None:
    base_url = one_slot.url
    short = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {**GREEDY, "num_predict": 4}}
    with ThreadPoolExecutor(max_workers=1) as pool, httpx.Client(base_url=base_url, timeout=60) as client:
        with client.stream("POST", "/api/generate", json=COUNTING) as response:
            lines = response.iter_lines()
            for _ in range(3):
                assert not json.loads(next(lines))["done"]
            queued = pool.submit(lambda: httpx.post(f"{base_url}/api/generate", json=short, timeout=60))
            time.sleep(0.5)
            assert not queued.done()  # it waits for the one slot, which the counting stream holds
        # Leaving the block closed the connection mid-stream; counting to 1500 would take ~10 s more.
        closed = time.monotonic()
        reply = queued.result(timeout=60)
        waited = time.monotonic() - closed
    assert reply.status_code == 200 and reply.json()["done"]
    assert waited < scaled(3.0), f"the queued request waited {waited:.1f}s after the disconnect"


def abandon_stream(base_url: str, body: dict[str, object], after: float) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as client, client.stream("POST", "/api/generate", json=body):
        time.sleep(after)  # headers arrive at once; the body would wait for the slot


def test_requests_abandoned_while_queued_do_not_disturb_the_busy_slot(one_slot: RuntimeProcess) -> None:
    base_url = one_slot.url
    counting = {**COUNTING, "stream": False, "options": {**COUNTING["options"], "num_predict": 200}}
    short = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {**GREEDY, "num_predict": 8}}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        expected = http.post("/api/generate", json=counting).json()["response"]
        short_alone = http.post("/api/generate", json=short).json()["response"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(lambda: httpx.post(f"{base_url}/api/generate", json=counting, timeout=60))
        time.sleep(0.3)
        streamed = pool.submit(abandon_stream, base_url, {**short, "stream": True}, 0.3)
        whole = pool.submit(lambda: httpx.post(f"{base_url}/api/generate", json=short, timeout=0.3))
        time.sleep(0.6)
        last = pool.submit(lambda: httpx.post(f"{base_url}/api/generate", json=short, timeout=60))
        assert first.result().json()["response"] == expected
        assert last.result().json()["response"] == short_alone
        streamed.result()
        assert isinstance(whole.exception(), httpx.TimeoutException)


def test_non_streaming_client_that_gives_up_frees_the_slot(one_slot: RuntimeProcess) -> None:
    base_url = one_slot.url
    counting = {**COUNTING, "stream": False}
    short = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {**GREEDY, "num_predict": 4}}
    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{base_url}/api/generate", json=counting, timeout=1.0)
        gave_up = time.monotonic()
        reply = pool.submit(lambda: httpx.post(f"{base_url}/api/generate", json=short, timeout=60)).result()
        waited = time.monotonic() - gave_up
    assert reply.status_code == 200
    assert waited < scaled(3.0), f"the next request waited {waited:.1f}s after the client gave up"


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_a_runner_killed_mid_stream_ends_that_stream_with_an_error_and_the_next_request_gets_a_new_one(
    one_slot: RuntimeProcess, api: str
) -> None:
    base_url = one_slot.url
    path, body = (
        ("/api/generate", COUNTING)
        if api == "ollama"
        else ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "Count."}],
                                        "stream": True, "max_tokens": 1500, "temperature": 0})
    )  # fmt: skip
    with httpx.Client(base_url=base_url, timeout=60) as client, client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        lines = (line for line in response.iter_lines() if line.strip())
        for _ in range(3):
            assert "error" not in next(lines)
        (runner,) = runners(one_slot)
        os.kill(runner.pid, signal.SIGKILL)
        killed = time.monotonic()
        rest = list(lines)
        ended = time.monotonic() - killed
    errors = [line for line in rest if "error" in line]
    assert errors, rest[-3:]
    assert "stopped unexpectedly (killed by SIGKILL)" in errors[-1]
    assert ended < scaled(1.0), f"the stream took {ended:.1f}s to end after its runner died"

    after = {**COUNTING, "stream": False, "options": {"num_predict": 3}}
    reply = httpx.post(f"{base_url}/api/generate", json=after, timeout=scaled(60))  # a new runner loads first
    assert reply.status_code == 200 and reply.json()["done"]
    (successor,) = runners(one_slot)
    assert successor.pid != runner.pid
    log = one_slot.log.read_text()
    assert f"(pid {runner.pid}) died: killed by SIGKILL" in log


def test_an_idle_runner_is_unloaded_after_keep_alive(one_slot: RuntimeProcess) -> None:
    with httpx.Client(base_url=one_slot.url, timeout=60) as client:
        reply = client.post("/api/generate", json={**COUNTING, "stream": False, "keep_alive": "1s",
                                                   "options": {"num_predict": 2}})  # fmt: skip
        assert reply.status_code == 200
        (runner,) = runners(one_slot)
        deadline = time.monotonic() + scaled(10)
        while client.get("/api/ps").json()["models"] or runner.is_running():
            assert time.monotonic() < deadline, client.get("/api/ps").json()
            time.sleep(0.2)
    assert runners(one_slot) == []


def test_two_models_loaded_at_once_each_get_their_own_runner(runtime: RuntimeProcess, runtime_models_dir: Path) -> None:
    twin = runtime_models_dir / "twin.gguf"
    shutil.copyfile(smollm2_gguf(), twin)
    try:
        with httpx.Client(base_url=runtime.url, timeout=60) as client:
            for model in (MODEL, "twin"):
                reply = client.post("/api/generate", json={"model": model, "prompt": "Hi", "stream": False,
                                                           "options": {"num_predict": 2}})  # fmt: skip
                assert reply.status_code == 200, reply.text
            loaded = {model["name"]: model for model in client.get("/api/ps").json()["models"]}
            assert {MODEL, "twin:latest"} <= set(loaded)
            pids = {process.pid for process in runners(runtime)}
            assert len(pids) == 2
            sizes = {process.pid: process.memory_info().rss for process in runners(runtime)}
            assert all(loaded[name]["size"] > 0 for name in (MODEL, "twin:latest"))
            assert loaded["twin:latest"]["size"] <= max(sizes.values()) * 1.5  # its runner's memory, not a guess
            client.post("/api/generate", json={"model": "twin", "keep_alive": 0})  # unload it
    finally:
        twin.unlink()
