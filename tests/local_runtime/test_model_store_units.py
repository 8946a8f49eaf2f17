"""The model store, the catalog over it, Go templates, and the puller's bounds against a hostile registry."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import gguf
import pytest
from registry_support import LocalRegistry, local_registry

from local_runtime.catalog import Catalog, locate_default_gguf
from local_runtime.config import RuntimeSettings
from local_runtime.details import MetadataCache
from local_runtime.errors import InvalidRequest, ModelNotFound
from local_runtime.gotemplate import TemplateUnsupported, compile_template
from local_runtime.pool import ModelPool
from local_runtime.prompting import ChatTurn
from local_runtime.registry import Progress, Puller, PullFailed
from local_runtime.runtime import Runtime
from local_runtime.store import (
    MAX_LAYERS,
    MAX_MANIFEST_BYTES,
    MEDIA_CONFIG,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    Layer,
    ModelStore,
)

REGISTRY = "registry.ollama.ai"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def put(store: ModelStore, data: bytes, media_type: str) -> Layer:
    digest = digest_of(data)
    asyncio.run(store.write_blob(digest, chunks(data)))
    return Layer(media_type, digest, len(data))


def tiny_gguf(path: Path) -> Path:
    """A GGUF with metadata only and no chat template (the catalog and prompts never load weights)."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_context_length(512)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("qwen2.5:0.5b", "qwen2.5:0.5b"),
        ("Qwen2.5", "qwen2.5:latest"),
        ("library/phi", "phi:latest"),
        ("me/model:v1", "me/model:v1"),
        ("registry.ollama.ai/library/phi:2", "phi:2"),
        ("localhost:5000/ns/model:t", "localhost:5000/ns/model:t"),
        ("https://example.com/ns/model", "example.com/ns/model:latest"),
    ],
)
def test_names_parse_with_ollamas_defaults_and_show_shortest(tmp_path: Path, text: str, shown: str) -> None:
    store = ModelStore(tmp_path, REGISTRY)
    assert store.display(store.parse_name(text)) == shown


@pytest.mark.parametrize(
    "text", ["", "a/b/c/d", "../x", "x y", ":tag", "ns.dot/model", "m:" + "t" * 81, "m:-t", "a:b:c/ns/m", "h:x/ns/m"]
)
def test_invalid_names_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid model name"):
        ModelStore(tmp_path, REGISTRY).parse_name(text)


def test_write_blob_checks_the_digest_and_leaves_nothing_on_mismatch(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, REGISTRY)
    with pytest.raises(InvalidRequest, match="digest mismatch"):
        asyncio.run(store.write_blob(digest_of(b"other"), chunks(b"data")))
    assert list(store.blobs_dir.iterdir()) == []
    source = tmp_path / "file.bin"
    source.write_bytes(b"x" * 3_000_000)
    path = asyncio.run(store.write_blob(digest_of(source.read_bytes()), source))
    assert path == store.blob_path(digest_of(source.read_bytes())) and store.has_blob(digest_of(source.read_bytes()))
    with pytest.raises(InvalidRequest, match="invalid digest"):
        store.blob_path("sha256:../../etc/passwd")


def test_delete_keeps_blobs_another_model_references_and_copy_shares_them(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, REGISTRY)
    model = put(store, b"weights", MEDIA_MODEL)
    config = put(store, b"{}", MEDIA_CONFIG)
    system = put(store, b"be brief", MEDIA_SYSTEM)
    store.write_manifest("a:1", [model, system], config)
    store.copy("a:1", "me/b:2")
    assert store.names() == ["a:1", "me/b:2"]
    assert store.read_manifest("me/b:2").digest == store.read_manifest("a:1").digest
    store.write_manifest("a:1", [model], config)  # `a` no longer uses the system layer, `b` does
    store.delete("me/b:2")
    assert store.names() == ["a:1"]
    assert store.has_blob(model.digest) and not store.has_blob(system.digest)
    store.delete("a:1")
    assert store.names() == [] and list(store.blobs_dir.iterdir()) == []
    assert not (store.manifests_dir / REGISTRY).exists()
    with pytest.raises(ModelNotFound, match="model 'a:1' not found"):
        store.delete("a:1")


def test_manifests_are_bounded(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, REGISTRY)
    layer = {"mediaType": MEDIA_MODEL, "digest": digest_of(b"x"), "size": 1}
    many = {"schemaVersion": 2, "config": layer, "layers": [layer] * (MAX_LAYERS + 1)}
    name = store.parse_name("many")
    with pytest.raises(InvalidRequest, match="layers, at most"):
        store.write_manifest_bytes(name, json.dumps(many).encode())
    with pytest.raises(InvalidRequest, match="larger than"):
        store.write_manifest_bytes(name, b" " * (MAX_MANIFEST_BYTES + 1))
    bad_digest = {"schemaVersion": 2, "config": layer, "layers": [{**layer, "digest": "sha256:../../x"}]}
    with pytest.raises(InvalidRequest, match="invalid digest"):
        store.write_manifest_bytes(name, json.dumps(bad_digest).encode())
    assert store.names() == []


def test_catalog_serves_a_store_model_with_its_layers(tmp_path: Path) -> None:
    gguf_path = tiny_gguf(tmp_path / "tiny.gguf")
    catalog = Catalog(tmp_path / "models", {}, REGISTRY)
    store = catalog.store
    model = put(store, gguf_path.read_bytes(), MEDIA_MODEL)
    template = put(store, b"{{ .Prompt }}", MEDIA_TEMPLATE)
    params = put(store, json.dumps({"stop": ["</s>"], "num_ctx": 256}).encode(), MEDIA_PARAMS)
    system = put(store, b"You are terse.", MEDIA_SYSTEM)
    store.write_manifest("tiny:1", [model, template, params, system], put(store, b"{}", MEDIA_CONFIG))
    found = catalog.resolve("TINY:1")
    assert found.name == "tiny:1" and found.path == store.blob_path(model.digest)
    assert (found.template, found.system, found.params) == ("{{ .Prompt }}", "You are terse.", found.params)
    assert found.params == {"stop": ["</s>"], "num_ctx": 256}
    assert catalog.digest(found) == store.read_manifest("tiny:1").digest
    assert found.size == sum(layer.size for layer in store.read_manifest("tiny:1").blobs)


def runtime_over(catalog: Catalog) -> Runtime:
    settings = RuntimeSettings(models_dir=catalog.models_dir)
    metadata = MetadataCache()
    pool = ModelPool(catalog, metadata, settings.llama_server, 1, 1, 0.0, 1, 10.0)
    return Runtime(settings, catalog, metadata, pool)


def test_go_template_is_used_when_the_gguf_has_none_and_a_foreign_one_is_refused(tmp_path: Path) -> None:
    gguf_path = tiny_gguf(tmp_path / "tiny.gguf")
    catalog = Catalog(tmp_path / "models", {}, REGISTRY)
    store = catalog.store
    model, config = put(store, gguf_path.read_bytes(), MEDIA_MODEL), put(store, b"{}", MEDIA_CONFIG)
    chatml = (
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}"
    )
    system = put(store, b"You are terse.", MEDIA_SYSTEM)
    store.write_manifest("good:1", [model, put(store, chatml.encode(), MEDIA_TEMPLATE), system], config)
    unusable = b"{{ range $i, $m := .Messages }}{{ $m.Content }}{{ end }}"
    store.write_manifest("odd:1", [model, put(store, unusable, MEDIA_TEMPLATE)], config)
    runtime = runtime_over(catalog)

    async def prompt(name: str) -> str:
        prepared = await runtime.prepare_chat(name, [ChatTurn("user", "Hi")], [], None, None, None)
        prepared.admission.release()
        return prepared.job.prompt

    assert asyncio.run(prompt("good:1")) == (
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    with pytest.raises(InvalidRequest, match="template of model 'odd:1' cannot be used"):
        asyncio.run(prompt("odd:1"))


def test_go_templates_in_messages_form_render_every_turn() -> None:
    template = compile_template(
        '{{- range .Messages }}{{ if eq .Role "user" }}U:{{ .Content }}\n{{ else if eq .Role "assistant" }}'
        "A:{{ .Content }}\n{{ else }}S:{{ .Content }}\n{{ end }}{{ end }}A:"
    )
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]
    assert template.render_chat(messages) == "S:sys\nU:q1\nA:a1\nU:q2\nA:"
    for source in ["{{ if .X }}", '{{ template "t" }}', "{{ .X | len }}", "{{ json .Tools }}", "{{ end }}"]:
        with pytest.raises(TemplateUnsupported):
            compile_template(source)


def pull_all(puller: Puller, store: ModelStore, name: str) -> list[Progress]:
    async def run() -> list[Progress]:
        return [step async for step in puller.pull(store.parse_name(name))]

    return asyncio.run(run())


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[LocalRegistry, ModelStore, Puller]:
    gguf_path = locate_default_gguf() or tiny_gguf(tmp_path / "tiny.gguf")
    with local_registry({"library/base:1": gguf_path}) as registry:
        store = ModelStore(tmp_path / "models", registry.host)
        yield registry, store, Puller(store, [registry.host], timeout=10, free_margin=0)


def test_puller_refuses_an_oversized_manifest_and_text_layer(hostile: tuple[LocalRegistry, ModelStore, Puller]) -> None:
    registry, store, puller = hostile
    registry.manifests[("library/big", "1")] = b" " * (MAX_MANIFEST_BYTES + 10)
    with pytest.raises(PullFailed, match="larger than"):
        pull_all(puller, store, "big:1")
    layer = {"mediaType": MEDIA_TEMPLATE, "digest": digest_of(b"t"), "size": 50 * 1024 * 1024}
    config = {"mediaType": MEDIA_CONFIG, "digest": digest_of(b"{}"), "size": 2}
    registry.manifests[("library/text", "1")] = json.dumps(
        {"schemaVersion": 2, "config": config, "layers": [layer]}
    ).encode()
    with pytest.raises(PullFailed, match="at most"):
        pull_all(puller, store, "text:1")
    assert not store.blobs_dir.exists() or list(store.blobs_dir.iterdir()) == []


def test_puller_refuses_a_token_realm_on_another_host(hostile: tuple[LocalRegistry, ModelStore, Puller]) -> None:
    registry, store, _ = hostile
    port = registry.host.split(":")[1]
    elsewhere = Puller(store, [f"localhost:{port}"], timeout=10, free_margin=0)
    # The challenge names 127.0.0.1 as its realm; asked as localhost, the token must not be fetched there.
    with pytest.raises(PullFailed, match="does not match original host"):
        pull_all(elsewhere, store, f"localhost:{port}/library/base:1")
    assert [record.path for record in registry.requests].count("/token") == 0


def test_two_pulls_of_one_model_at_once_download_each_layer_once(
    hostile: tuple[LocalRegistry, ModelStore, Puller],
) -> None:
    registry, store, puller = hostile

    async def both() -> list[list[Progress]]:
        async def one() -> list[Progress]:
            return [step async for step in puller.pull(store.parse_name("base:1"))]

        return list(await asyncio.gather(one(), one()))

    for steps in asyncio.run(both()):
        assert steps[-1].status == "success"
    model_digest = registry.digest_of("base:1")
    assert [record.path for record in registry.blob_requests()].count(f"/v2/library/base/blobs/{model_digest}") == 1
    assert store.names() == ["base:1"] and store.has_blob(model_digest)
    assert puller._blob_locks == {}


def test_blobs_redirected_to_a_cdn_are_followed_and_resumed_there(
    hostile: tuple[LocalRegistry, ModelStore, Puller],
) -> None:
    registry, store, puller = hostile
    registry.redirect_blobs = True
    registry.fail_after(1 << 20)  # the first download through the CDN is cut after 1 MiB
    steps = pull_all(puller, store, "base:1")
    assert steps[-1].status == "success"
    model_digest = registry.digest_of("base:1")
    cdn = [record for record in registry.requests if record.path == f"/cdn/{model_digest}"]
    assert [record.range for record in cdn] == [None, f"bytes={1 << 20}-"]
    assert store.has_blob(model_digest)


def test_a_models_dir_that_cannot_be_written_fails_the_pull_clearly(
    hostile: tuple[LocalRegistry, ModelStore, Puller],
) -> None:
    _, store, puller = hostile
    store.models_dir.mkdir(parents=True, exist_ok=True)
    store.blobs_dir.write_text("a file where the blobs dir belongs")
    with pytest.raises(PullFailed, match="cannot write to") as failed:
        pull_all(puller, store, "base:1")
    assert failed.value.status_code == 507  # insufficient storage, never an internal error
