"""A deterministic question asked twice through the host: the proxy's cache answers, and the host says so."""

import uuid

import httpx

from procs import HOST_KEY, scaled


def _ask(host: str, question: str, stream: bool, temperature: float = 0) -> httpx.Response:
    body = {
        "model": "smollm2:135m",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 6,
        "temperature": temperature,
        "stream": stream,
    }
    headers = {"Authorization": f"Bearer {HOST_KEY}"}
    with httpx.Client(timeout=scaled(120)) as client:
        reply = client.post(f"{host}/v1/chat/completions", headers=headers, json=body)
    assert reply.status_code == 200, reply.text
    return reply


def test_a_streamed_answer_asked_again_at_temperature_0_comes_from_the_cache_and_says_cached(host: str) -> None:
    question = f"Name one fruit. ({uuid.uuid4().hex[:8]})"
    first = _ask(host, question, stream=True)
    second = _ask(host, question, stream=True)
    assert "x-context-cached" not in first.headers
    assert second.headers.get("x-context-cached") == "1"
    assert "data: [DONE]" in second.text


def test_a_whole_answer_asked_again_at_temperature_0_comes_from_the_cache(host: str) -> None:
    question = f"Name one river. ({uuid.uuid4().hex[:8]})"
    first, second = _ask(host, question, stream=False), _ask(host, question, stream=False)
    assert "x-context-cached" not in first.headers and second.headers.get("x-context-cached") == "1"
    assert second.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]


def test_an_answer_at_a_temperature_above_0_is_never_from_the_cache(host: str) -> None:
    question = f"Name one tree. ({uuid.uuid4().hex[:8]})"
    replies = [_ask(host, question, stream=False, temperature=0.9) for _ in range(2)]
    assert not any("x-context-cached" in reply.headers for reply in replies)
