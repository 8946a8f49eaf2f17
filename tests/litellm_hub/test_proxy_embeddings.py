"""Embeddings through the real proxy with the repo's config: `all-minilm` on the runtime, with a virtual key."""

import uuid

import httpx
import numpy as np
import openai
import pytest
from hub_support import SMOLLM, bearer, create_key

from local_runtime.minilm import locate_minilm_gguf
from procs import scaled

pytestmark = pytest.mark.timeout(300)
TEXTS = ["The cat sat on the mat.", "How do I reset my password?"]


@pytest.fixture(scope="module", autouse=True)
def minilm_converted() -> None:
    assert locate_minilm_gguf() is not None, "all-minilm is not converted: run scripts/convert_minilm.sh (make setup)"


def test_a_key_gets_all_minilm_embeddings_through_the_sdk(proxy: str, database_url: str) -> None:
    from agent_host.rag.embeddings import MINILM, SentenceTransformerEmbedder, minilm_path

    key = create_key(database_url, f"embed-{uuid.uuid4().hex[:8]}")
    sdk = openai.OpenAI(base_url=f"{proxy}/v1", api_key=key, timeout=scaled(120), max_retries=0)
    reply = sdk.embeddings.create(model="all-minilm", input=TEXTS)
    vectors = np.asarray([item.embedding for item in reply.data], dtype=np.float32)
    expected = SentenceTransformerEmbedder(MINILM, minilm_path()).embed_documents(TEXTS)
    assert vectors.shape == expected.shape == (2, 384)
    assert (vectors * expected).sum(axis=1).min() >= 0.99
    assert reply.usage.prompt_tokens > len(TEXTS)


def test_a_key_without_all_minilm_is_refused(proxy: str, database_url: str) -> None:
    alias = f"embed-{uuid.uuid4().hex[:8]}"
    key = create_key(database_url, alias, "--models", SMOLLM)
    response = httpx.post(
        f"{proxy}/v1/embeddings",
        headers=bearer(key),
        json={"model": "all-minilm", "input": "hello"},
        timeout=scaled(60),
    )
    assert response.status_code == 403
    assert "may not use model 'all-minilm'" in response.json()["error"]["message"]


def test_bad_embedding_input_is_a_client_error_not_a_500(proxy: str, database_url: str) -> None:
    key = create_key(database_url, f"embed-{uuid.uuid4().hex[:8]}")
    response = httpx.post(
        f"{proxy}/v1/embeddings",
        headers=bearer(key),
        json={"model": "all-minilm", "input": "word " * 1000, "truncate": False},
        timeout=scaled(60),
    )
    assert 400 <= response.status_code < 500, response.text


def test_the_chat_model_list_leaves_out_the_embedding_model(proxy: str, database_url: str) -> None:
    # What the UI and the agent host rely on: LiteLLM's /model/info tells a key each group's mode.
    from chat_ui.backend import embedding_models, list_models
    from chat_ui.config import Settings
    from chat_ui.people import Credentials

    key = create_key(database_url, f"embed-{uuid.uuid4().hex[:8]}")
    sdk = openai.OpenAI(base_url=f"{proxy}/v1", api_key=key, timeout=scaled(60), max_retries=0)
    assert embedding_models(sdk) == {"all-minilm"}
    settings = Settings(litellm_base_url=f"{proxy}/v1", litellm_api_key=key, agent_host_url="", runtime_urls=[])
    listed = {option.id for option in list_models(settings, Credentials(api_key=key, headers={})).options}
    assert SMOLLM in listed and "all-minilm" not in listed
