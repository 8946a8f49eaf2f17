"""The proxy as the seed's README shows it, through httpx and the openai SDK (shared session proxy)."""

import httpx
import openai
import pytest
from hub_support import MASTER_KEY, SMOLLM, bearer, chat_body

SEED_MODELS = {"qwen2.5:0.5b", "tinyllama:1.1b", "phi:latest", SMOLLM, "all-minilm"}


def test_liveliness_answers_without_a_key(client: httpx.Client) -> None:
    response = client.get("/health/liveliness")
    assert response.status_code == 200


def test_models_lists_the_served_groups_for_the_master_key(client: httpx.Client) -> None:
    response = client.get("/v1/models", headers=bearer(MASTER_KEY))
    assert response.status_code == 200
    listed = {model["id"] for model in response.json()["data"]}
    # Seed models without a backend may be hidden once a health check has seen them fail.
    assert SMOLLM in listed and listed <= SEED_MODELS


def test_chat_completion_with_the_master_key_answers(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", headers=bearer(MASTER_KEY), json=chat_body())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] > 0
    assert response.headers["x-litellm-model-group"] == SMOLLM


def test_a_request_without_a_key_is_refused_with_401(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 401
    assert "missing API key" in response.json()["error"]["message"]


def test_a_wrong_key_is_refused_with_401_and_never_echoed(client: httpx.Client) -> None:
    wrong = "sk-not-a-real-key-0000000000wxyz"
    response = client.post("/v1/chat/completions", headers=bearer(wrong), json=chat_body())
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert "sk-...wxyz" in message
    assert wrong not in response.text


def test_a_seed_model_without_ollama_is_answered_by_the_embedded_model(client: httpx.Client) -> None:
    # The test runtimes serve only smollm2, like a machine without Ollama: the fallback answers.
    response = client.post("/v1/chat/completions", headers=bearer(MASTER_KEY), json=chat_body("qwen2.5:0.5b"))
    assert response.status_code == 200, response.text
    assert SMOLLM in response.json()["model"]
    assert response.headers["x-litellm-attempted-fallbacks"] == "1"


@pytest.fixture
def sdk(proxy: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy}/v1", api_key=MASTER_KEY, max_retries=0, timeout=120)


def test_the_openai_sdk_chats_through_the_proxy(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model=SMOLLM, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8
    )
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_the_openai_sdk_streams_through_the_proxy(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model=SMOLLM, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8, stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len(pieces) > 1
    assert "".join(pieces).strip()


def test_the_openai_sdk_sees_a_bad_key_as_an_authentication_error(proxy: str) -> None:
    bad = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-wrong-key-123456", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
