"""Queueing: one generation at a time per model, outputs never mixed, a gone client frees the model."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from runtime_support import GREEDY, MODEL

from procs import scaled

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


def streamed_answer(base_url: str, prompt: str) -> str:
    with (
        httpx.Client(base_url=base_url, timeout=120) as client,
        client.stream("POST", "/api/chat", json=chat_body(prompt, stream=True)) as response,
    ):
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1]["done"]
    return "".join(line["message"]["content"] for line in lines)


def test_parallel_requests_each_get_their_own_answer(base_url: str, http: httpx.Client) -> None:
    alone = [
        http.post("/api/chat", json=chat_body(prompt, stream=False)).json()["message"]["content"] for prompt in PROMPTS
    ]
    assert len(set(alone)) == len(PROMPTS)  # distinct answers, so any mix-up would show
    with ThreadPoolExecutor(max_workers=len(PROMPTS)) as pool:
        together = list(pool.map(lambda prompt: streamed_answer(base_url, prompt), PROMPTS))
    assert together == alone


def test_disconnect_mid_stream_frees_the_model_for_the_next_request(base_url: str) -> None:
    short = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {**GREEDY, "num_predict": 4}}
    with ThreadPoolExecutor(max_workers=1) as pool, httpx.Client(base_url=base_url, timeout=60) as client:
        with client.stream("POST", "/api/generate", json=COUNTING) as response:
            lines = response.iter_lines()
            for _ in range(3):
                assert not json.loads(next(lines))["done"]
            queued = pool.submit(lambda: httpx.post(f"{base_url}/api/generate", json=short, timeout=60))
            time.sleep(0.5)
            assert not queued.done()  # it waits for the model, which the counting stream holds
        # Leaving the block closed the connection mid-stream; counting to 1500 would take ~10 s more.
        closed = time.monotonic()
        reply = queued.result(timeout=60)
        waited = time.monotonic() - closed
    assert reply.status_code == 200 and reply.json()["done"]
    assert waited < scaled(3.0), f"the queued request waited {waited:.1f}s after the disconnect"


def abandon_stream(base_url: str, body: dict[str, object], after: float) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as client, client.stream("POST", "/api/generate", json=body):
        time.sleep(after)  # headers arrive at once; the body would wait for the model


def test_requests_abandoned_while_queued_do_not_free_the_busy_model(base_url: str, http: httpx.Client) -> None:
    counting = {**COUNTING, "stream": False, "options": {**COUNTING["options"], "num_predict": 200}}
    expected = http.post("/api/generate", json=counting).json()["response"]
    short = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {**GREEDY, "num_predict": 8}}
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


def test_non_streaming_client_that_gives_up_frees_the_model(base_url: str) -> None:
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
