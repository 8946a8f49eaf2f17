"""One row per request in hub_request_log: successes, failures and streams (shared proxy and database)."""

import json
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from hub_support import MASTER_KEY, SMOLLM, bearer, chat_body, create_key, run_keys, wait_for_rows
from psycopg.rows import dict_row

from hub.tokens import hash_key
from procs import scaled


@pytest.fixture(scope="module")
def logged_key(database_url: str) -> tuple[str, str]:
    alias = f"log-{uuid.uuid4().hex[:8]}"
    return alias, create_key(database_url, alias)


def wait_for_key_rows(database_url: str, key_hash: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute("SELECT * FROM hub_request_log WHERE key_hash = %s", (key_hash,)).fetchall()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def call_id(response: httpx.Response) -> str:
    return response.headers["x-litellm-call-id"]


def test_a_successful_chat_is_logged_with_tokens_latency_and_deployment(
    client: httpx.Client, database_url: str, logged_key: tuple[str, str]
) -> None:
    alias, key = logged_key
    response = client.post("/v1/chat/completions", headers=bearer(key), json=chat_body())
    assert response.status_code == 200, response.text
    row = wait_for_rows(database_url, [call_id(response)])[call_id(response)]
    usage = response.json()["usage"]
    assert row["status"] == "success" and row["http_status"] == 200
    assert (row["key_alias"], row["key_hash"]) == (alias, hash_key(key))
    assert (row["model_requested"], row["model_group"]) == (SMOLLM, SMOLLM)
    assert row["deployment_id"] in {"smollm2-135m-runtime1", "smollm2-135m-runtime2"}
    assert row["api_base"].startswith("http://127.0.0.1:")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert row["cost"] == 0.0  # local models are free unless the config gives them a price
    assert row["latency_ms"] > 0 and row["stream"] is False


def test_a_streamed_chat_is_logged_with_its_tokens_and_time_to_first_token(
    client: httpx.Client, database_url: str, logged_key: tuple[str, str]
) -> None:
    _, key = logged_key
    with client.stream(
        "POST", "/v1/chat/completions", headers=bearer(key), json=chat_body(max_tokens=12, stream=True)
    ) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: {")]
        request_id = call_id(response)
    streamed = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events if e)
    row = wait_for_rows(database_url, [request_id])[request_id]
    assert streamed and row["status"] == "success" and row["stream"] is True
    assert row["completion_tokens"] > 0 and row["prompt_tokens"] > 0
    assert row["ttft_ms"] is not None and 0 < row["ttft_ms"] <= row["latency_ms"]


def test_a_model_the_backend_lacks_is_logged_as_one_row_through_its_fallback(
    client: httpx.Client, database_url: str
) -> None:
    response = client.post("/v1/chat/completions", headers=bearer(MASTER_KEY), json=chat_body("phi:latest"))
    assert response.status_code == 200, response.text
    # The failed attempt may be written first (the writer flushes every second); the fallback's success
    # replaces it in the same row.
    deadline = time.monotonic() + scaled(20)
    while (row := wait_for_rows(database_url, [call_id(response)])[call_id(response)])["status"] != "success":
        assert time.monotonic() < deadline, row
        time.sleep(0.3)
    assert (row["model_requested"], row["model_group"]) == ("phi:latest", SMOLLM)


def test_a_bad_request_is_logged_as_a_failure_with_its_status_and_error(
    client: httpx.Client, database_url: str, logged_key: tuple[str, str]
) -> None:
    alias, key = logged_key
    response = client.post("/v1/chat/completions", headers=bearer(key), json=chat_body("no-such-model"))
    assert response.status_code == 400
    row = wait_for_rows(database_url, [call_id(response)])[call_id(response)]
    assert row["status"] == "failure" and row["http_status"] == 400
    assert row["key_alias"] == alias
    assert "no-such-model" in row["error"]


def test_a_refused_key_is_logged_without_the_key_itself(client: httpx.Client, database_url: str) -> None:
    wrong = f"sk-wrong-{uuid.uuid4().hex}"
    response = client.post("/v1/chat/completions", headers=bearer(wrong), json=chat_body())
    assert response.status_code == 401  # refused before routing: no call-id header, so find it by hash
    rows = wait_for_key_rows(database_url, hash_key(wrong))
    assert len(rows) == 1
    assert rows[0]["status"] == "failure" and rows[0]["http_status"] == 401
    assert wrong not in json.dumps(rows[0], default=str)


def test_usage_reports_requests_and_failures_per_key_and_model(client: httpx.Client, database_url: str) -> None:
    alias = f"usage-{uuid.uuid4().hex[:8]}"
    key = create_key(database_url, alias)
    responses = [
        client.post("/v1/chat/completions", headers=bearer(key), json=body)
        for body in (chat_body(), chat_body(), chat_body("no-such-model"))
    ]
    wait_for_rows(database_url, [call_id(response) for response in responses])
    result = run_keys(database_url, "usage", "--since", "1h", "--alias", alias)
    assert result.returncode == 0, result.stderr
    by_model = {cells[1]: cells for cells in (line.split() for line in result.stdout.splitlines()) if cells[0] == alias}
    assert by_model[SMOLLM][2:4] == ["2", "0"]  # requests, failed
    assert by_model["no-such-model"][2:4] == ["1", "1"]
