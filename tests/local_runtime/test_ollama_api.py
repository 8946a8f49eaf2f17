"""Ollama's native API against the real SmolLM2 model, through the official client and raw HTTP."""

import json
import time
from typing import Any

import httpx
import ollama
import pytest
from runtime_support import GREEDY, MODEL

from procs import scaled

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def client(base_url: str) -> ollama.Client:
    return ollama.Client(host=base_url)


def test_version_reports_an_ollama_version(http: httpx.Client) -> None:
    body = http.get("/api/version").json()
    assert body["version"].count(".") == 2


def test_tags_list_the_default_model_with_gguf_details(client: ollama.Client, http: httpx.Client) -> None:
    listed = {model.model: model for model in client.list().models}
    assert MODEL in listed
    entry = next(item for item in http.get("/api/tags").json()["models"] if item["name"] == MODEL)
    assert entry["model"] == MODEL
    assert len(entry["digest"]) == 64
    assert entry["size"] > 50_000_000
    assert entry["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "135M",
        "quantization_level": "Q4_1",
    }


def test_show_returns_template_details_and_context_length(client: ollama.Client) -> None:
    shown = client.show(MODEL)
    assert "<|im_start|>" in (shown.template or "")
    assert shown.details is not None and shown.details.family == "llama"
    assert shown.modelinfo is not None
    assert shown.modelinfo["llama.context_length"] == 8192
    assert shown.modelinfo["general.architecture"] == "llama"
    assert "FROM " in (shown.modelfile or "")


def test_chat_answers_without_streaming(client: ollama.Client) -> None:
    reply = client.chat(
        MODEL, messages=[{"role": "user", "content": "Say hello."}], options={**GREEDY, "num_predict": 16}
    )
    assert reply.message.role == "assistant"
    assert reply.message.content
    assert reply.done and reply.done_reason in ("stop", "length")
    assert reply.prompt_eval_count and reply.prompt_eval_count > 5
    assert reply.eval_count and 0 < reply.eval_count <= 16
    assert reply.eval_duration and reply.eval_duration > 0
    assert reply.prompt_eval_duration and reply.prompt_eval_duration > 0
    assert reply.total_duration and reply.total_duration >= reply.eval_duration


def test_chat_streams_ndjson_until_done(http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Name a colour."}], "options": {"num_predict": 12}}
    with http.stream("POST", "/api/chat", json=body) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert len(lines) >= 2
    assert all(not line["done"] for line in lines[:-1])
    final = lines[-1]
    assert final["done"] and final["done_reason"] in ("stop", "length")
    for key in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count"):
        assert isinstance(final[key], int)
    assert final["eval_count"] >= len(lines) - 1  # a token whose text is held back adds no line


def test_chat_streams_through_the_official_client(client: ollama.Client) -> None:
    parts = list(
        client.chat(MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True, options={"num_predict": 8})
    )
    assert parts[-1].done
    assert "".join(part.message.content or "" for part in parts)


def test_generate_streams_and_answers_whole(client: ollama.Client) -> None:
    whole = client.generate(MODEL, "The capital of France is", options={**GREEDY, "num_predict": 8})
    streamed = client.generate(MODEL, "The capital of France is", stream=True, options={**GREEDY, "num_predict": 8})
    assert "".join(part.response for part in streamed) == whole.response
    assert whole.done and whole.eval_count


def test_generate_accepts_a_system_prompt_and_raw_prompts(client: ollama.Client) -> None:
    with_system = client.generate(MODEL, "Hi", system="Answer in French.", options={**GREEDY, "num_predict": 8})
    templated = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    raw = client.generate(MODEL, templated, raw=True, options={**GREEDY, "num_predict": 8})
    assert with_system.response and raw.response
    assert raw.prompt_eval_count is not None and raw.prompt_eval_count < 15


def test_num_predict_limits_eval_count(client: ollama.Client) -> None:
    reply = client.generate(MODEL, "Write a long story about a dragon.", options={**GREEDY, "num_predict": 5})
    assert reply.eval_count == 5
    assert reply.done_reason == "length"


def test_seed_and_zero_temperature_are_deterministic(client: ollama.Client) -> None:
    def ask() -> str:
        return client.generate(MODEL, "Tell me about cats.", options={**GREEDY, "num_predict": 24}).response

    assert ask() == ask()


def test_seed_makes_sampling_repeatable(client: ollama.Client) -> None:
    def ask() -> str:
        options = {"temperature": 1.0, "seed": 1234, "num_predict": 24}
        return client.generate(MODEL, "Tell me about dogs.", options=options).response

    assert ask() == ask()


def test_stop_sequence_ends_the_answer(client: ollama.Client) -> None:
    prompt = "1, 2, 3, 4, 5, 6,"
    options = {**GREEDY, "num_predict": 16, "repeat_penalty": 1.0}
    free = client.generate(MODEL, prompt, raw=True, options=options)
    # The stop is taken from what this machine's model wrote, whatever that is (greedy: the same again).
    text = free.response
    if len(text.strip()) < 4:
        pytest.skip(f"the model wrote too little to cut: {text!r}")
    stop = text[len(text) // 2 :][:2]
    stopped = client.generate(MODEL, prompt, raw=True, options={**options, "stop": [stop]})
    assert stopped.response == text.split(stop)[0]
    assert stopped.done_reason == "stop"


def test_format_json_gives_json_or_stops_at_num_predict(client: ollama.Client) -> None:
    """JSON mode bounds no string or whitespace run, so only an answer the model ended itself must parse."""
    prompt = "Give a JSON object with the name and age of a cat named Tom who is 3."
    reply = client.generate(MODEL, prompt, format="json", options={**GREEDY, "num_predict": 160})
    assert reply.response.startswith("{")
    if reply.done_reason == "stop":
        assert isinstance(json.loads(reply.response), dict)
    else:
        assert reply.done_reason == "length" and reply.eval_count == 160


def test_format_schema_constrains_the_answer(client: ollama.Client) -> None:
    # Closed, with every value bounded (integers are at most 16 digits, booleans fixed, whitespace runs at
    # most 22 characters): the grammar must end well within num_predict, whatever the model prefers.
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
        "required": ["age", "available"],
        "additionalProperties": False,
    }
    messages = [{"role": "user", "content": "Ollama is 22 and busy. Return JSON."}]
    reply = client.chat(MODEL, messages=messages, format=schema, options={**GREEDY, "num_predict": 300})
    assert reply.done_reason == "stop"
    answer = json.loads(reply.message.content or "")
    assert set(answer) == {"age", "available"}
    assert isinstance(answer["age"], int) and isinstance(answer["available"], bool)


def test_empty_generate_loads_the_model_and_keep_alive_zero_unloads_it(http: httpx.Client) -> None:
    loaded = http.post("/api/generate", json={"model": MODEL}).json()
    assert loaded["done"] and loaded["response"] == "" and loaded["done_reason"] == "load"
    assert MODEL in [model["name"] for model in http.get("/api/ps").json()["models"]]
    unloaded = http.post("/api/generate", json={"model": MODEL, "keep_alive": 0}).json()
    assert unloaded["done_reason"] == "unload"
    assert MODEL not in [model["name"] for model in http.get("/api/ps").json()["models"]]


def test_ps_shows_expiry_and_num_ctx_change_reloads(client: ollama.Client) -> None:
    client.generate(MODEL, "Hi", options={"num_predict": 1, "num_ctx": 1024}, keep_alive="10m")
    running = {model.model: model for model in client.ps().models}
    assert running[MODEL].context_length == 1024
    assert running[MODEL].expires_at is not None
    reply = client.generate(MODEL, "Hi", options={"num_predict": 1, "num_ctx": 2048})
    assert reply.load_duration and reply.load_duration > 1_000_000  # reloaded for the new context size
    assert {model.model: model for model in client.ps().models}[MODEL].context_length == 2048


def test_keep_alive_zero_unloads_after_the_request(client: ollama.Client) -> None:
    client.generate(MODEL, "Hi", options={"num_predict": 1}, keep_alive=0)
    assert MODEL not in [model.model for model in client.ps().models]


def test_loaded_model_expires_after_its_keep_alive(client: ollama.Client) -> None:
    client.generate(MODEL, "Hi", options={"num_predict": 1}, keep_alive="1s")
    assert MODEL in [model.model for model in client.ps().models]
    deadline = time.monotonic() + scaled(10)  # the reaper looks every second, then stops the runner
    while MODEL in [model.model for model in client.ps().models]:
        assert time.monotonic() < deadline, "model still loaded long after a 1s keep_alive"
        time.sleep(0.2)
