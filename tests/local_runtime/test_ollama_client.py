"""The official `ollama` Python client, unchanged, against a real runtime: pull (from the local registry),
list, copy, create (from a model, from an uploaded blob), delete, chat and embed."""

import math
from collections.abc import Iterator

import ollama
import pytest
from registry_support import LocalRegistry, local_registry
from runtime_support import MODEL, smollm2_gguf

from local_runtime.minilm import locate_minilm_gguf
from procs import scaled, start_runtime

pytestmark = pytest.mark.timeout(300)
PULLED = "qwen2.5:0.5b"


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    with local_registry({f"library/{PULLED}": smollm2_gguf(), "library/tiny:1b": smollm2_gguf()}) as served:
        yield served


@pytest.fixture(scope="module")
def client(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ollama.Client]:
    process, url = start_runtime(
        tmp_path_factory.mktemp("ollama-client-models"),
        RUNTIME_THREADS="1",
        RUNTIME_REGISTRY=registry.host,
        RUNTIME_INSECURE_REGISTRIES=registry.host,
    )
    try:
        yield ollama.Client(host=url, timeout=scaled(120))
    finally:
        process.stop()


def listed(client: ollama.Client) -> set[str]:
    return {model.model for model in client.list().models if model.model}


def test_pull_streams_progress_and_lists_the_model(client: ollama.Client, registry: LocalRegistry) -> None:
    progress = list(client.pull(PULLED, stream=True))
    assert progress[0].status == "pulling manifest" and progress[-1].status == "success"
    layer = [part for part in progress if part.digest == registry.digest_of(PULLED)]
    assert layer and layer[-1].completed == layer[-1].total == smollm2_gguf().stat().st_size
    assert PULLED in listed(client)
    assert client.pull(PULLED).status == "success"  # stream=False: one answer, the layers already there


def test_copy_create_and_delete_as_the_client_calls_them(client: ollama.Client) -> None:
    client.pull(PULLED)
    assert client.copy(PULLED, "qwen-copy").status == "success"
    assert "qwen-copy:latest" in listed(client)

    created = client.create(model="pirate", from_=PULLED, system="You are a pirate.", parameters={"temperature": 0})
    assert created.status == "success"
    statuses = [part.status for part in client.create(model="pirate2", from_="pirate", stream=True)]
    assert statuses[-2:] == ["writing manifest", "success"]
    reply = client.chat(model="pirate", messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 3})
    assert reply.message.content

    assert client.delete("qwen-copy").status == "success"
    assert client.delete("pirate2").status == "success"
    assert {"qwen-copy:latest", "pirate2:latest"}.isdisjoint(listed(client))
    assert PULLED in listed(client)  # its blobs are shared with pirate and the deleted copy: still served


def test_create_from_a_model_not_pulled_yet_pulls_it(client: ollama.Client) -> None:
    statuses = [part.status for part in client.create(model="tiny-pirate", from_="tiny:1b", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert {"tiny:1b", "tiny-pirate:latest"} <= listed(client)


def test_create_from_a_blob_the_client_uploads(client: ollama.Client) -> None:
    digest = client.create_blob(smollm2_gguf())
    assert client.create(model="uploaded", files={"model.gguf": digest}).status == "success"
    assert "uploaded:latest" in listed(client)


def test_errors_reach_the_client_with_ollamas_text_and_status(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        client.delete("never-was")
    assert missing.value.status_code == 404 and missing.value.error == "model 'never-was' not found"
    with pytest.raises(ollama.ResponseError) as builtin:
        client.delete(MODEL)
    assert builtin.value.status_code == 403
    with pytest.raises(ollama.ResponseError) as unknown:
        client.copy("never-was", "elsewhere")
    assert unknown.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as bad:
        client.create(model="nothing")
    assert bad.value.status_code == 400 and "neither 'from' or 'files'" in bad.value.error
    with pytest.raises(ollama.ResponseError) as absent:
        client.pull("no-such-model:7b")
    assert "file does not exist" in absent.value.error


def test_embed_with_all_minilm(client: ollama.Client) -> None:
    assert locate_minilm_gguf() is not None, "all-minilm is not converted: run scripts/convert_minilm.sh (make setup)"
    reply = client.embed(model="all-minilm", input=["The sky is blue.", "Grass is green."])
    assert len(reply.embeddings) == 2 and len(reply.embeddings[0]) == 384
    assert math.isclose(math.fsum(x * x for x in reply.embeddings[0]), 1.0, rel_tol=1e-3)  # L2-normalised
    assert "all-minilm:latest" in listed(client)


def test_list_gives_the_fields_the_client_parses(client: ollama.Client) -> None:
    """size, digest and details, as Ollama fills them for a pulled model."""
    client.pull(PULLED)
    models = {model.model: model for model in client.list().models}
    pulled = models[PULLED]
    assert pulled.size and pulled.digest and pulled.details and pulled.details.family == "llama"
    assert pulled.details.quantization_level == "Q4_1"
