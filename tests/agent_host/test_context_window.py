"""A session that grows past a 512-token model keeps answering, on a stored running summary."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from host_support import MODEL, auth, chat_body, new_session, shared_master_key, start_host

from procs import PostgresInstance, start_proxy, start_runtime

WINDOW = 512


@pytest.fixture(scope="module")
def small_host(models_dir: Path, postgres: PostgresInstance) -> Iterator[str]:
    runtime, runtime_url = start_runtime(models_dir, RUNTIME_NUM_CTX=str(WINDOW), RUNTIME_THREADS="1")
    proxy, proxy_url = start_proxy(shared_master_key(), postgres.url("litellm"), runtime_url, runtime_url)
    # Loaded once, the runtime reports its num_ctx in /api/ps: the host learns the window from there.
    httpx.post(f"{runtime_url}/api/generate", json={"model": MODEL, "prompt": "", "stream": False}, timeout=60)
    host, url = start_host(
        proxy_url, postgres.url("genailabs"), shared_master_key(), RECENT_MESSAGES="2", SUMMARY_TOKENS="48"
    )
    yield url
    for process in (host, proxy, runtime):
        process.stop()


def test_the_window_is_learnt_from_the_runtime_behind_the_proxy(small_host: str) -> None:
    response = httpx.post(f"{small_host}/v1/chat/completions", json=chat_body("Hi"), headers=auth(), timeout=60)
    assert response.headers["x-context-window"] == str(WINDOW)


def test_a_session_longer_than_the_window_keeps_answering_with_a_stored_summary(small_host: str) -> None:
    session_id = new_session(small_host, title="long")
    facts = []
    fact = "My favourite colour is blue and I live in a small town by the sea with my three cats. "
    for turn in range(8):
        body = chat_body(f"Turn {turn}. {fact * 2}", max_tokens=16, session_id=session_id)
        response = httpx.post(f"{small_host}/v1/chat/completions", json=body, headers=auth(), timeout=120)
        assert response.status_code == 200, response.text
        context = response.json()["context"]
        assert context["prompt_tokens"] + context["reply_tokens"] <= WINDOW
        # The model's own count (its template included) stays within what the host planned for.
        assert response.json()["usage"]["prompt_tokens"] + context["reply_tokens"] <= WINDOW
        facts.append(context)
    assert any(c["summarised_messages"] > 0 for c in facts)
    assert not any(c["trimmed_messages"] for c in facts)  # summarised, not dropped
    assert response.headers["x-context-window"] == str(WINDOW)
    session = httpx.get(f"{small_host}/sessions/{session_id}", headers=auth()).json()
    assert session["summary"] and session["summarised_messages"] >= 2
    assert session["message_count"] == 16
