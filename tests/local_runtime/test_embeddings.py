"""Embeddings on a real runtime: all-minilm (the shipped MiniLM as a GGUF) against the agent host's own vectors,
a chat model through its embedding runner, Ollama's /api/embed and /api/embeddings, OpenAI's /v1/embeddings."""

import math
import time
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from runtime_support import MODEL

from local_runtime.minilm import locate_minilm_gguf
from procs import scaled

pytestmark = pytest.mark.timeout(300)
MINILM = "all-minilm"
TEXTS = [
    "The cat sat on the mat.",
    "Llamas are members of the camelid family.",
    "How do I reset my password?",
    "Ünïcödé façade, naïve café — 東京",
]


@pytest.fixture(scope="module", autouse=True)
def minilm_converted(base_url: str) -> Iterator[None]:
    """The GGUF is there; afterwards the runners these tests loaded are stopped, as the session's runtime is
    shared with tests that count its runners."""
    assert locate_minilm_gguf() is not None, "all-minilm is not converted: run scripts/convert_minilm.sh (make setup)"
    yield
    with httpx.Client(base_url=base_url, timeout=scaled(60)) as client:
        for model in (MINILM, MODEL):
            client.post("/api/generate", json={"model": model, "keep_alive": 0}).raise_for_status()


@pytest.fixture(scope="module")
def agent_host_vectors() -> np.ndarray:
    """The agent host's MiniLM (sentence-transformers, fp32 torch) on the same texts."""
    from agent_host.rag.embeddings import MINILM as HOST_MINILM
    from agent_host.rag.embeddings import SentenceTransformerEmbedder, minilm_path

    return SentenceTransformerEmbedder(HOST_MINILM, minilm_path()).embed_documents(TEXTS)


@pytest.fixture
def slow(base_url: str) -> Iterator[httpx.Client]:
    """A client for model-backed calls: the first one loads an embedding runner."""
    with httpx.Client(base_url=base_url, timeout=scaled(120)) as client:
        yield client


def embed(client: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    response = client.post("/api/embed", json=body)
    assert response.status_code == 200, response.text
    reply: dict[str, object] = response.json()
    return reply


def test_all_minilm_matches_the_agent_host_vectors(slow: httpx.Client, agent_host_vectors: np.ndarray) -> None:
    reply = embed(slow, {"model": MINILM, "input": TEXTS})
    vectors = np.asarray(reply["embeddings"], dtype=np.float32)
    assert vectors.shape == agent_host_vectors.shape == (len(TEXTS), 384)
    cosines = (vectors * agent_host_vectors).sum(axis=1)  # both L2-normalised
    assert cosines.min() >= 0.99, cosines
    assert reply["model"] == MINILM


def test_embed_answers_as_ollama_with_unit_vectors_and_counts(slow: httpx.Client) -> None:
    reply = embed(slow, {"model": MINILM, "input": TEXTS[0]})
    (vector,) = reply["embeddings"]  # type: ignore[misc]
    assert math.isclose(math.fsum(value * value for value in vector), 1.0, rel_tol=1e-4)
    # [CLS] the cat sat on the mat . [SEP]
    assert reply["prompt_eval_count"] == 9
    assert isinstance(reply["total_duration"], int) and reply["total_duration"] > 0
    assert isinstance(reply["load_duration"], int)


def test_older_embeddings_endpoint_returns_the_same_direction_unnormalised(slow: httpx.Client) -> None:
    (normalised,) = embed(slow, {"model": MINILM, "input": TEXTS[1]})["embeddings"]  # type: ignore[misc]
    response = slow.post("/api/embeddings", json={"model": MINILM, "prompt": TEXTS[1]})
    assert response.status_code == 200, response.text
    raw = np.asarray(response.json()["embedding"])
    assert abs(np.linalg.norm(raw) - 1.0) > 0.01  # as Ollama: the model's own vector
    assert float(raw @ np.asarray(normalised)) / float(np.linalg.norm(raw)) >= 0.9999


def test_openai_sdk_embeddings_in_base64_and_float_agree(base_url: str, agent_host_vectors: np.ndarray) -> None:
    sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=scaled(120))
    default = sdk.embeddings.create(model=MINILM, input=TEXTS)  # the SDK asks for base64 and decodes it
    floats = sdk.embeddings.create(model=MINILM, input=TEXTS, encoding_format="float")
    assert [item.index for item in default.data] == list(range(len(TEXTS)))
    np.testing.assert_allclose([item.embedding for item in default.data], [item.embedding for item in floats.data])
    cosines = (np.asarray([item.embedding for item in floats.data]) * agent_host_vectors).sum(axis=1)
    assert cosines.min() >= 0.99
    assert default.usage.prompt_tokens == default.usage.total_tokens > len(TEXTS)
    assert default.model == MINILM
    short = sdk.embeddings.create(model=MINILM, input="hello", dimensions=64, encoding_format="float")
    assert len(short.data[0].embedding) == 64
    assert math.isclose(math.fsum(v * v for v in short.data[0].embedding), 1.0, rel_tol=1e-4)


def test_long_input_is_truncated_by_default_and_refused_without_truncate(slow: httpx.Client) -> None:
    long = "word " * 1000  # over all-minilm's 512-token context
    reply = embed(slow, {"model": MINILM, "input": long})
    assert reply["prompt_eval_count"] == 512
    refused = slow.post("/api/embed", json={"model": MINILM, "input": long, "truncate": False})
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("the input length exceeds the context length")


def test_empty_input_loads_the_model_and_answers_no_vectors(slow: httpx.Client) -> None:
    assert embed(slow, {"model": MINILM, "input": []})["embeddings"] == []
    assert slow.post("/api/embeddings", json={"model": MINILM}).json() == {"embedding": []}


def test_a_chat_model_embeds_on_its_embedding_runner_beside_its_chat_runner(slow: httpx.Client) -> None:
    chat = {"model": MODEL, "prompt": "Say hi.", "stream": False, "options": {"num_predict": 4, "temperature": 0}}
    assert slow.post("/api/generate", json=chat).status_code == 200
    reply = embed(slow, {"model": MODEL, "input": ["a cat", "a dog", "tax law"]})
    vectors = np.asarray(reply["embeddings"])
    assert vectors.shape == (3, 576)  # SmolLM2-135M's width
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    assert not np.allclose(vectors[0], vectors[2])
    # The chat runner is still there and still answers; /api/ps lists the model once, with both runners' memory.
    listed = [entry for entry in slow.get("/api/ps").json()["models"] if entry["name"] == MODEL]
    assert len(listed) == 1 and listed[0]["size"] > 0
    assert slow.post("/api/generate", json=chat).json()["done"] is True


def test_show_says_what_each_model_is_for(slow: httpx.Client) -> None:
    assert slow.post("/api/show", json={"model": MINILM}).json()["capabilities"] == ["embedding"]
    assert "completion" in slow.post("/api/show", json={"model": MODEL}).json()["capabilities"]


def test_keep_alive_zero_unloads_the_embedding_runner(slow: httpx.Client) -> None:
    embed(slow, {"model": MINILM, "input": "x", "keep_alive": 0})
    deadline = time.monotonic() + scaled(30)
    while "all-minilm:latest" in [entry["name"] for entry in slow.get("/api/ps").json()["models"]]:
        assert time.monotonic() < deadline, "all-minilm is still loaded"
        time.sleep(0.2)
    # The next request loads it again.
    assert len(embed(slow, {"model": MINILM, "input": "x"})["embeddings"]) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "nope", "input": "x"}, 404, "model 'nope' not found"),
        ({"model": MINILM, "input": [1, 2]}, 400, "invalid value for input"),
        ({"model": MINILM, "input": "x", "keep_alive": "soon"}, 400, "invalid keep_alive duration"),
        ({"model": MINILM, "input": ["a"] * 2049}, 400, "too many inputs: 2049, at most 2048 per request"),
        ({"input": "x"}, 400, "model is required"),
    ],
)
def test_bad_embed_requests_get_ollama_errors(
    http: httpx.Client, body: dict[str, object], status: int, message: str
) -> None:
    response = http.post("/api/embed", json=body)
    assert response.status_code == status
    assert response.json()["error"].startswith(message)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": MINILM, "input": []}, 400, "input must be a non-empty string"),
        ({"model": MINILM, "input": ""}, 400, "input must be a non-empty string"),
        ({"model": MINILM, "input": [[101, 102]]}, 400, "invalid value for input"),
        ({"model": MINILM, "input": "x", "encoding_format": "hex"}, 400, "invalid value for encoding_format"),
        ({"model": "nope", "input": "x"}, 404, "model 'nope' not found"),
    ],
)
def test_bad_v1_embeddings_requests_get_openai_errors(
    http: httpx.Client, body: dict[str, object], status: int, message: str
) -> None:
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"].startswith(message) and error["type"] in ("invalid_request_error", "not_found_error")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", {"model": MINILM, "messages": [{"role": "user", "content": "hi"}]}),
        ("/api/generate", {"model": MINILM, "prompt": "hi"}),
        ("/v1/chat/completions", {"model": MINILM, "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/completions", {"model": MINILM, "prompt": "hi"}),
    ],
)
def test_an_embedding_model_refuses_to_generate_before_answering(
    http: httpx.Client, path: str, body: dict[str, object]
) -> None:
    response = http.post(path, json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    message = error["message"] if path.startswith("/v1") else error
    assert message == '"all-minilm:latest" does not support generate or chat: it is an embedding model'


def test_ollama_stop_unloads_an_embedding_model(slow: httpx.Client) -> None:
    embed(slow, {"model": MINILM, "input": "x", "keep_alive": "5m"})
    stopped = slow.post("/api/generate", json={"model": MINILM, "keep_alive": 0})  # what `ollama stop` sends
    assert stopped.status_code == 200 and stopped.json()["done_reason"] == "unload"
    assert "all-minilm:latest" not in [entry["name"] for entry in slow.get("/api/ps").json()["models"]]
