"""Runtime limits on real processes: schema bombs, foreign origins, big bodies, a full queue, num_ctx clamping."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runtime_support import BOMB_SCHEMA, GREEDY, MODEL, RuntimeProcess, assert_alive

from procs import start_runtime

pytestmark = pytest.mark.timeout(180)
HI = [{"role": "user", "content": "Hi"}]
OLLAMA_BOMB = {"model": MODEL, "messages": HI, "format": BOMB_SCHEMA, "stream": False}
OPENAI_BOMB = {
    "model": MODEL,
    "messages": HI,
    "response_format": {"type": "json_schema", "json_schema": {"name": "bomb", "schema": BOMB_SCHEMA}},
}
SMALL_BODY_LIMIT = 65536
SMALL_CTX = 1024


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """A runtime with one slot per runner and one queued request at most, a 1024-token context cap and a
    64 KiB body limit."""
    process, url = start_runtime(
        tmp_path_factory.mktemp("small-runtime-models"),
        RUNTIME_THREADS="1",
        RUNTIME_NUM_PARALLEL="1",
        RUNTIME_MAX_QUEUE="1",
        RUNTIME_MAX_CTX=str(SMALL_CTX),
        RUNTIME_MAX_BODY_BYTES=str(SMALL_BODY_LIMIT),
    )
    try:
        yield RuntimeProcess(process, url)
    finally:
        process.stop()


def test_schema_bomb_in_format_is_400_and_the_runtime_lives(http: httpx.Client, base_url: str) -> None:
    response = http.post("/api/chat", json=OLLAMA_BOMB)
    assert response.status_code == 400
    assert "format.properties.text.maxLength" in response.json()["error"]
    assert_alive(base_url)


def test_schema_bomb_sent_as_text_plain_is_400(http: httpx.Client, base_url: str) -> None:
    """What any web page can send without a CORS preflight."""
    response = http.post("/api/chat", content=json.dumps(OLLAMA_BOMB), headers={"content-type": "text/plain"})
    assert response.status_code == 400
    assert_alive(base_url)


def test_schema_bomb_in_response_format_is_an_openai_400(http: httpx.Client, base_url: str) -> None:
    response = http.post("/v1/chat/completions", json=OPENAI_BOMB)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "response_format.json_schema.schema.properties.text.maxLength is 100000" in error["message"]
    assert_alive(base_url)


def test_schema_bomb_in_tool_parameters_is_400(http: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "save", "parameters": BOMB_SCHEMA}}
    response = http.post("/api/chat", json={"model": MODEL, "messages": HI, "tools": [tool], "stream": False})
    assert response.status_code == 400
    assert "tools[save].function.parameters.properties.text.maxLength" in response.json()["error"]


def test_a_grammar_llama_cpp_refuses_is_400_before_generation(http: httpx.Client, base_url: str) -> None:
    """A quote in a tool name breaks the GBNF: the runner refuses it before it generates, and both live on."""
    tool = {"type": "function", "function": {"name": 'say"hi', "parameters": {"type": "object"}}}
    response = http.post("/api/chat", json={"model": MODEL, "messages": HI, "tools": [tool], "stream": False})
    assert response.status_code == 400
    assert "cannot parse its grammar" in response.json()["error"]
    assert_alive(base_url)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a{1,100000}$"},
        {"type": "array", "items": {"type": "integer"}, "minItems": 100000},
        {"type": "object", "properties": {f"p{i}": {"type": "string", "maxLength": 1000} for i in range(30)}},
    ],
)
def test_schemas_over_repetition_bounds_are_400(http: httpx.Client, schema: dict[str, Any]) -> None:
    response = http.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "format": schema, "stream": False})
    assert response.status_code == 400
    assert "over the limit" in response.json()["error"]


def test_a_bounded_schema_answers_json_that_fits(http: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    body = {"model": MODEL, "prompt": "Tom the cat is 3.", "format": schema, "stream": False}
    reply = http.post("/api/generate", json={**body, "options": {**GREEDY, "num_predict": 200}}).json()
    assert reply["done_reason"] == "stop"  # every string and number is bounded, so the grammar ends in time
    answer = json.loads(reply["response"])
    assert set(answer) == {"name", "age"} and len(answer["name"]) <= 12


def test_foreign_origin_is_403_before_any_work(http: httpx.Client) -> None:
    headers = {"origin": "https://evil.example", "content-type": "text/plain"}
    response = http.post("/api/chat", content=json.dumps(OLLAMA_BOMB), headers=headers)
    assert response.status_code == 403
    assert "origin 'https://evil.example' is not allowed" in response.json()["error"]
    preflight = http.options("/v1/chat/completions", headers={"origin": "https://evil.example",
                                                              "access-control-request-method": "POST"})  # fmt: skip
    assert preflight.status_code == 403


def test_local_origins_and_requests_without_one_pass(http: httpx.Client) -> None:
    allowed = http.get("/api/version", headers={"origin": "http://localhost:8501"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:8501"
    assert http.get("/api/version").status_code == 200


def test_dns_rebinding_host_is_403(http: httpx.Client) -> None:
    response = http.get("/api/tags", headers={"host": "attacker.example:11434"})
    assert response.status_code == 403


def test_body_over_the_limit_is_413(small: RuntimeProcess) -> None:
    body = json.dumps({"model": MODEL, "prompt": "x" * SMALL_BODY_LIMIT}).encode()
    with httpx.Client(base_url=small.url, timeout=60) as client:
        declared = client.post("/api/generate", content=body)
        assert declared.status_code == 413
        assert declared.json() == {"error": f"request body is larger than {SMALL_BODY_LIMIT} bytes"}
        chunked = client.post("/v1/chat/completions", content=iter([body[:40000], body[40000:]]))  # no length
        assert chunked.status_code == 413
        assert chunked.json()["error"]["message"] == f"request body is larger than {SMALL_BODY_LIMIT} bytes"


def test_full_queue_is_503_with_retry_after(small: RuntimeProcess) -> None:
    counting = {"model": MODEL, "prompt": "1, 2, 3, 4, 5,", "raw": True,
                "options": {"temperature": 0, "repeat_penalty": 1.0, "num_predict": 900}}  # fmt: skip
    with (
        httpx.Client(base_url=small.url, timeout=60) as client,
        client.stream("POST", "/api/generate", json=counting) as running,
    ):
        lines = running.iter_lines()  # kept: a dropped iterator closes the response, and the server stops it
        assert not json.loads(next(lines))["done"]  # it holds the model
        with client.stream("POST", "/api/generate", json=counting) as waiting:
            assert waiting.status_code == 200  # admitted: the one request RUNTIME_MAX_QUEUE=1 lets wait
            refused = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HI})
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) > 0
            assert "too many requests queued" in refused.json()["error"]["message"]
            also_refused = client.post("/api/chat", json={"model": MODEL, "messages": HI, "stream": False})
            assert also_refused.status_code == 503 and "retry-after" in also_refused.headers
    assert_alive(small.url)  # the abandoned requests gave their places back


def test_num_ctx_is_clamped_to_the_limit(small: RuntimeProcess) -> None:
    with httpx.Client(base_url=small.url, timeout=60) as client:
        reply = client.post("/api/generate", json={"model": MODEL, "prompt": "Hi", "stream": False,
                                                   "options": {"num_predict": 1, "num_ctx": 100000}})  # fmt: skip
        assert reply.status_code == 200
        running = {model["name"]: model for model in client.get("/api/ps").json()["models"]}
        assert running[MODEL]["context_length"] == SMALL_CTX


def test_num_ctx_is_clamped_to_the_trained_context(tmp_path: Path) -> None:
    process, url = start_runtime(tmp_path, RUNTIME_THREADS="1", RUNTIME_MAX_CTX="100000")
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            client.post("/api/generate", json={"model": MODEL, "options": {"num_ctx": 50000}})  # load only
            running = {model["name"]: model for model in client.get("/api/ps").json()["models"]}
            assert running[MODEL]["context_length"] == 8192  # SmolLM2's llama.context_length
    finally:
        process.stop()
