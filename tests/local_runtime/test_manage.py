"""/api/create, /api/copy, /api/delete and /api/blobs/:digest on a real runtime with its own models dir:
Ollama's answers, bad input refused with nothing stored lost, uploads atomic and bounded."""

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import gguf
import httpx
import pytest
from registry_support import LocalRegistry, local_registry
from runtime_support import MODEL, RuntimeProcess, assert_alive, smollm2_gguf

from procs import scaled, start_runtime

pytestmark = pytest.mark.timeout(300)
BLOB_CAP = 150 * 1024 * 1024  # above the shipped 98 MB GGUF
HI = [{"role": "user", "content": "Hi"}]


def sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("manage-models")


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    with local_registry({"library/remote:1b": smollm2_gguf()}) as served:
        yield served


@pytest.fixture(scope="module")
def runtime(models_dir: Path, registry: LocalRegistry) -> Iterator[RuntimeProcess]:
    process, url = start_runtime(
        models_dir,
        RUNTIME_THREADS="1",
        RUNTIME_MAX_BLOB_BYTES=str(BLOB_CAP),
        RUNTIME_REGISTRY=registry.host,
        RUNTIME_INSECURE_REGISTRIES=registry.host,
    )
    try:
        yield RuntimeProcess(process, url)
    finally:
        process.stop()


@pytest.fixture
def http(runtime: RuntimeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=runtime.url, timeout=scaled(120)) as client:
        yield client


@pytest.fixture(scope="module")
def gguf_digest(runtime: RuntimeProcess) -> str:
    """The shipped GGUF, uploaded once as a blob."""
    data = smollm2_gguf().read_bytes()
    digest = sha(data)
    reply = httpx.post(f"{runtime.url}/api/blobs/{digest}", content=data, timeout=scaled(120))
    assert reply.status_code in (200, 201), reply.text
    return digest


def short_chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": HI, "stream": False, "options": {"num_predict": 2}}


def lines(response: httpx.Response) -> list[dict[str, object]]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def names(http: httpx.Client) -> set[str]:
    return {model["name"] for model in http.get("/api/tags").json()["models"]}


def manifest_path(models_dir: Path, model: str, tag: str = "latest") -> Path:
    """Under the default registry's host: the local registry's, here."""
    (path,) = (models_dir / "manifests").glob(f"*/library/{model}/{tag}")
    return path


def stored_layer(models_dir: Path, model: str, media_type: str) -> bytes:
    manifest = json.loads(manifest_path(models_dir, model).read_bytes())
    layer = next(layer for layer in manifest["layers"] if layer["mediaType"] == media_type)
    return (models_dir / "blobs" / layer["digest"].replace(":", "-")).read_bytes()


def leftovers(models_dir: Path) -> list[Path]:
    """Temp files an upload or create left in the store."""
    return [path for path in (models_dir / "blobs").glob(".tmp-*")]


# blobs


def test_a_blob_upload_is_stored_under_its_digest(http: httpx.Client, models_dir: Path) -> None:
    data = b"a small blob " * 1000
    digest = sha(data)
    assert http.head(f"/api/blobs/{digest}").status_code == 404
    assert http.post(f"/api/blobs/{digest}", content=data).status_code == 201
    assert http.head(f"/api/blobs/{digest}").status_code == 200
    assert (models_dir / "blobs" / digest.replace(":", "-")).read_bytes() == data
    assert http.post(f"/api/blobs/{digest}", content=data).status_code == 200  # already there, as Ollama
    assert not leftovers(models_dir)


def test_a_gguf_larger_than_the_body_limit_uploads(gguf_digest: str, http: httpx.Client) -> None:
    """The 98 MB GGUF passes although other bodies stop at 4 MiB."""
    assert http.head(f"/api/blobs/{gguf_digest}").status_code == 200
    big_json = json.dumps({"model": MODEL, "prompt": "x" * (5 * 1024 * 1024)})
    assert http.post("/api/generate", content=big_json).status_code == 413


def test_a_blob_whose_sha256_differs_is_refused_and_not_kept(http: httpx.Client, models_dir: Path) -> None:
    claimed = sha(b"something else")
    reply = http.post(f"/api/blobs/{claimed}", content=b"the real bytes")
    assert reply.status_code == 400
    assert reply.json()["error"].startswith("digest mismatch")
    assert http.head(f"/api/blobs/{claimed}").status_code == 404
    assert not leftovers(models_dir)


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "0" * 64, "sha256:" + "g" * 64, "latest"])
def test_a_malformed_digest_is_400(http: httpx.Client, digest: str) -> None:
    reply = http.post(f"/api/blobs/{digest}", content=b"x")
    assert reply.status_code == 400
    assert "invalid digest format" in reply.json()["error"]
    assert http.head(f"/api/blobs/{digest}").status_code == 400


def declared_upload(runtime: RuntimeProcess, digest: str, length: int) -> bytes:
    """The answer to a blob upload that declares `length` bytes and sends none (httpx will not send that)."""
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=scaled(30)) as sock:
        head = f"POST /api/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n"
        sock.sendall(head.encode())
        return sock.recv(4096)


def test_a_blob_over_the_cap_is_413_declared_or_streamed(
    runtime: RuntimeProcess, http: httpx.Client, models_dir: Path
) -> None:
    digest = sha(b"never stored")
    assert declared_upload(runtime, digest, BLOB_CAP + 1).startswith(b"HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:
        block = b"\0" * (1024 * 1024)
        for _ in range(BLOB_CAP // len(block) + 2):
            yield block

    try:
        streamed = http.post(f"/api/blobs/{digest}", content=chunks())
        assert streamed.status_code == 413
        assert "larger than" in streamed.json()["error"]
    except httpx.RemoteProtocolError:
        pass  # the server answered 413 and closed while the client was still sending; either way nothing is kept
    assert http.head(f"/api/blobs/{digest}").status_code == 404
    assert not leftovers(models_dir)


def test_an_upload_cut_off_midway_leaves_nothing_behind(
    runtime: RuntimeProcess, http: httpx.Client, models_dir: Path
) -> None:
    digest = sha(b"never finished")
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=scaled(30)) as sock:
        head = f"POST /api/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n"
        sock.sendall(head.encode() + b"x" * 1000)
    deadline = time.monotonic() + scaled(30)
    while f"upload of {digest} cut off" not in runtime.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the runtime never noticed the cut"
        time.sleep(0.1)
    assert not leftovers(models_dir)
    assert http.head(f"/api/blobs/{digest}").status_code == 404
    assert "Traceback" not in runtime.log.read_text(errors="replace")


# create


def test_create_from_an_uploaded_blob_streams_ollamas_status_lines(
    http: httpx.Client, gguf_digest: str, models_dir: Path
) -> None:
    body = {
        "model": "pirate",
        "files": {"model.gguf": gguf_digest},
        "system": "You are a pirate.",
        "parameters": {"temperature": 0.2, "stop": ["<|im_end|>"]},
    }
    reply = http.post("/api/create", json=body)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/x-ndjson"
    statuses = [line["status"] for line in lines(reply)]
    assert statuses[:2] == ["parsing GGUF", f"using existing layer {gguf_digest}"]
    assert all(str(status).startswith("creating new layer sha256:") for status in statuses[2:4])
    assert statuses[-2:] == ["writing manifest", "success"]
    assert "pirate:latest" in names(http)
    assert stored_layer(models_dir, "pirate", "application/vnd.ollama.image.system") == b"You are a pirate."
    params = json.loads(stored_layer(models_dir, "pirate", "application/vnd.ollama.image.params"))
    assert params == {"temperature": 0.2, "stop": ["<|im_end|>"]}
    chat = http.post(
        "/api/chat", json={"model": "pirate", "messages": HI, "stream": False, "options": {"num_predict": 3}}
    )
    assert chat.status_code == 200 and chat.json()["done"]


def test_create_from_a_modelfile_layers_over_an_existing_model(
    http: httpx.Client, gguf_digest: str, models_dir: Path
) -> None:
    """What clients before Ollama 0.5 send: the Modelfile's parameters merge over the base model's."""
    http.post("/api/create", json={"model": "base", "files": {"m.gguf": gguf_digest}, "parameters": {"top_k": 5}})
    modelfile = (
        'FROM base\nPARAMETER temperature 0.7\nPARAMETER stop "User:"\nPARAMETER stop END\nSYSTEM """Be\nbrief."""\n'
    )
    reply = http.post("/api/create", json={"model": "derived", "modelfile": modelfile, "stream": False})
    assert reply.status_code == 200 and reply.json() == {"status": "success"}
    params = json.loads(stored_layer(models_dir, "derived", "application/vnd.ollama.image.params"))
    assert params == {"top_k": 5, "temperature": 0.7, "stop": ["User:", "END"]}
    assert stored_layer(models_dir, "derived", "application/vnd.ollama.image.system") == b"Be\nbrief."


def test_create_from_a_gguf_on_disk_and_from_a_builtin(http: httpx.Client, gguf_digest: str) -> None:
    for source in (str(smollm2_gguf()), MODEL):
        reply = http.post("/api/create", json={"model": "from-disk", "from": source, "stream": False})
        assert reply.status_code == 200, reply.text
        model = next(m for m in http.get("/api/tags").json()["models"] if m["name"] == "from-disk:latest")
        assert model["details"]["family"] == "llama"


def test_create_from_a_model_not_here_pulls_it_first(http: httpx.Client) -> None:
    """Ollama's parseFromModel: the pull's progress lines, then the create's."""
    reply = http.post("/api/create", json={"model": "local-remote", "from": "remote:1b", "system": "pulled"})
    statuses = [line.get("status") for line in lines(reply)]
    assert statuses[0] == "pulling manifest" and "verifying sha256 digest" in statuses
    assert statuses[-2:] == ["writing manifest", "success"] and statuses.count("success") == 1
    assert {"remote:1b", "local-remote:latest"} <= names(http)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "x"}, 400, "neither 'from' or 'files' was specified"),
        ({"model": "x", "modelfile": "FROB base"}, 400, '(line 1): command must be one of "from"'),
        ({"model": "x", "modelfile": "SYSTEM hi"}, 400, "no FROM line"),
        ({"model": "x", "modelfile": "FROM base\nPARAMETER temperature hot"}, 400, "invalid float value [hot]"),
        ({"model": "x", "modelfile": "FROM base\nMESSAGE robot hi"}, 400, "(line 2): message role must be one of"),
        ({"model": "x", "modelfile": 'FROM base\nSYSTEM """open'}, 400, "unexpected EOF"),
        ({"model": "x", "from": "base", "parameters": {"colour": 1}}, 400, "unknown parameter 'colour'"),
        ({"model": "x", "from": "base", "parameters": {"top_k": "five"}}, 400, "invalid int value"),
        ({"model": "x", "from": "base", "template": "{{ .Prompt "}, 400, "template error"),
        ({"model": "x", "from": "base", "quantize": "q4_K_M"}, 400, "quantize is not supported"),
        ({"model": "x", "files": {"../m.gguf": "sha256:" + "0" * 64}}, 400, "file path must be relative"),
        ({"model": "x", "files": {"m.gguf": "sha256:" + "0" * 64}}, 400, "not found: upload it first"),
        ({"model": "x", "files": {"m.gguf": "nope"}}, 400, "invalid digest format"),
        ({"model": "x", "from": "/nonexistent/model.gguf"}, 400, "not found on the runtime's machine"),
        ({"model": "x", "from": "no-such-model", "stream": False}, 404, "pull model manifest: file does not exist"),
        ({"model": "bad name!", "from": "base"}, 400, "invalid model name"),
        ({"model": MODEL, "from": "base"}, 403, "built into the runtime"),
    ],
)
def test_bad_create_requests_are_refused_and_change_nothing(
    http: httpx.Client, gguf_digest: str, models_dir: Path, body: dict[str, object], status: int, error: str
) -> None:
    http.post("/api/create", json={"model": "base", "files": {"m.gguf": gguf_digest}, "stream": False})
    before = manifest_path(models_dir, "base").read_bytes(), names(http)
    reply = http.post("/api/create", json=body)
    assert reply.status_code == status, reply.text
    assert error in reply.json()["error"]
    assert (manifest_path(models_dir, "base").read_bytes(), names(http)) == before
    assert not leftovers(models_dir)


def tiny_gguf_without_a_chat_template(path: Path) -> bytes:
    """Metadata only, no weights, no tokenizer.chat_template: enough for create to read and check."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def test_a_template_the_runtime_cannot_read_is_refused_when_the_gguf_has_none(
    http: httpx.Client, tmp_path: Path
) -> None:
    data = tiny_gguf_without_a_chat_template(tmp_path / "tiny.gguf")
    assert http.post(f"/api/blobs/{sha(data)}", content=data).status_code == 201
    files = {"tiny.gguf": sha(data)}
    unreadable = "{{ range $i, $m := .Messages }}{{ $m.Content }}{{ end }}"
    reply = http.post("/api/create", json={"model": "tiny", "files": files, "template": unreadable})
    assert reply.status_code == 400 and reply.json()["error"].startswith("template cannot be used by this runtime")
    readable = "{{ if .System }}{{ .System }}\n{{ end }}User: {{ .Prompt }}\nAssistant: {{ .Response }}"
    reply = http.post("/api/create", json={"model": "tiny", "files": files, "template": readable, "stream": False})
    assert reply.status_code == 200 and "tiny:latest" in names(http)


def test_a_template_over_a_gguf_with_its_own_says_which_one_is_used(http: httpx.Client, gguf_digest: str) -> None:
    body = {"model": "templated", "files": {"m.gguf": gguf_digest}, "template": "{{ .Prompt }}"}
    statuses = [line["status"] for line in lines(http.post("/api/create", json=body))]
    assert "the GGUF's own chat template is used here; the template is stored as a layer" in statuses
    assert statuses[-1] == "success"


def test_a_blob_that_is_not_a_gguf_cannot_become_a_model(http: httpx.Client) -> None:
    data = b"not a model at all"
    http.post(f"/api/blobs/{sha(data)}", content=data)
    reply = http.post("/api/create", json={"model": "text", "files": {"m.gguf": sha(data)}})
    assert reply.status_code == 400 and reply.json()["error"] == "supplied file was not in GGUF format"


def test_a_failed_create_over_an_existing_model_leaves_it_intact(
    http: httpx.Client, gguf_digest: str, models_dir: Path
) -> None:
    http.post("/api/create", json={"model": "kept", "files": {"m.gguf": gguf_digest}, "system": "one"})
    before = manifest_path(models_dir, "kept").read_bytes()
    reply = http.post("/api/create", json={"model": "kept", "from": "kept", "template": "{{ broken"})
    assert reply.status_code == 400
    assert manifest_path(models_dir, "kept").read_bytes() == before
    chat = http.post(
        "/api/chat", json={"model": "kept", "messages": HI, "stream": False, "options": {"num_predict": 2}}
    )
    assert chat.status_code == 200


# copy


def test_copy_answers_an_empty_200_and_both_names_serve(http: httpx.Client, gguf_digest: str) -> None:
    http.post("/api/create", json={"model": "original", "files": {"m.gguf": gguf_digest}, "system": "copy me"})
    reply = http.post("/api/copy", json={"source": "original", "destination": "team/duplicate:v1"})
    assert reply.status_code == 200 and reply.content == b""
    models = {m["name"]: m for m in http.get("/api/tags").json()["models"]}
    assert models["team/duplicate:v1"]["digest"] == models["original:latest"]["digest"]


def test_copy_onto_an_existing_model_replaces_it_as_ollama_does(
    http: httpx.Client, gguf_digest: str, models_dir: Path
) -> None:
    http.post("/api/create", json={"model": "first", "files": {"m.gguf": gguf_digest}, "system": "first"})
    http.post("/api/create", json={"model": "second", "files": {"m.gguf": gguf_digest}, "system": "second"})
    second_system = json.loads(manifest_path(models_dir, "second").read_bytes())["layers"][-1]["digest"]
    assert http.post("/api/copy", json={"source": "first", "destination": "second"}).status_code == 200
    assert stored_layer(models_dir, "second", "application/vnd.ollama.image.system") == b"first"
    assert not (models_dir / "blobs" / second_system.replace(":", "-")).exists()  # nothing references it now
    assert http.head(f"/api/blobs/{gguf_digest}").status_code == 200  # the shared GGUF stays


def test_copy_of_a_builtin_imports_it_into_the_store(http: httpx.Client) -> None:
    assert http.post("/api/copy", json={"source": MODEL, "destination": "my-smollm2"}).status_code == 200
    assert "my-smollm2:latest" in names(http)


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"source": "missing", "destination": "y"}, 404, 'model "missing" not found'),
        ({"source": "original", "destination": "bad name!"}, 400, 'destination "bad name!" is invalid'),
        ({"source": "bad name!", "destination": "y"}, 400, 'source "bad name!" is invalid'),
        ({"source": "original", "destination": MODEL}, 403, "built into the runtime"),
        ({"source": "original"}, 400, "destination"),
    ],
)
def test_bad_copy_requests_are_refused(
    http: httpx.Client, gguf_digest: str, body: dict[str, str], status: int, error: str
) -> None:
    http.post("/api/create", json={"model": "original", "files": {"m.gguf": gguf_digest}})
    reply = http.post("/api/copy", json=body)
    assert reply.status_code == status, reply.text
    assert error in reply.json()["error"]


# delete


def test_delete_removes_the_model_and_only_the_blobs_nothing_else_uses(
    http: httpx.Client, gguf_digest: str, models_dir: Path
) -> None:
    http.post("/api/create", json={"model": "doomed", "files": {"m.gguf": gguf_digest}, "system": "only mine"})
    http.post("/api/create", json={"model": "survivor", "files": {"m.gguf": gguf_digest}})
    system = next(
        layer["digest"]
        for layer in json.loads(manifest_path(models_dir, "doomed").read_bytes())["layers"]
        if layer["mediaType"].endswith("system")
    )
    reply = http.request("DELETE", "/api/delete", json={"model": "doomed"})
    assert reply.status_code == 200 and reply.content == b""
    assert "doomed:latest" not in names(http)
    assert http.head(f"/api/blobs/{system}").status_code == 404
    assert http.head(f"/api/blobs/{gguf_digest}").status_code == 200
    chat = http.post(
        "/api/chat", json={"model": "survivor", "messages": HI, "stream": False, "options": {"num_predict": 2}}
    )
    assert chat.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "never-was"}, 404, "model 'never-was' not found"),
        ({"model": MODEL}, 403, "built into the runtime and cannot be deleted"),
        ({"model": "all-minilm"}, 403, "built into the runtime and cannot be deleted"),
        ({"model": "bad name!"}, 400, 'name "bad name!" is invalid'),
        ({}, 400, "invalid"),
    ],
)
def test_bad_delete_requests_are_refused(http: httpx.Client, body: dict[str, str], status: int, error: str) -> None:
    reply = http.request("DELETE", "/api/delete", json=body)
    assert reply.status_code == status, reply.text
    assert error in reply.json()["error"]


def test_a_loose_gguf_cannot_be_shadowed_and_its_delete_removes_only_the_link(
    http: httpx.Client, models_dir: Path, gguf_digest: str
) -> None:
    (models_dir / "loose.gguf").symlink_to(smollm2_gguf())
    assert "loose:latest" in names(http)
    reply = http.post("/api/create", json={"model": "loose", "files": {"m.gguf": gguf_digest}})
    assert reply.status_code == 403 and "GGUF file in the models directory" in reply.json()["error"]
    assert http.request("DELETE", "/api/delete", json={"model": "loose"}).status_code == 200
    assert "loose:latest" not in names(http)
    assert smollm2_gguf().is_file()


def test_delete_without_a_body_is_400(http: httpx.Client) -> None:
    reply = http.request("DELETE", "/api/delete")
    assert reply.status_code == 400 and reply.json() == {"error": "missing request body"}


def test_a_model_in_use_is_not_deleted_under_its_stream(http: httpx.Client, gguf_digest: str) -> None:
    """409 while a generation streams from it; the stream ends normally; then the delete goes through and
    the idle runner is unloaded first."""
    http.post("/api/create", json={"model": "busy", "files": {"m.gguf": gguf_digest}})
    body = {"model": "busy", "prompt": "Count to a thousand.", "options": {"num_predict": 200, "temperature": 0}}
    with http.stream("POST", "/api/generate", json=body) as stream:
        chunks = stream.iter_lines()
        first = json.loads(next(chunks))
        assert first["done"] is False
        refused = http.request("DELETE", "/api/delete", json={"model": "busy"})
        assert refused.status_code == 409 and "in use" in refused.json()["error"]
        replaced = http.post("/api/create", json={"model": "busy", "from": "busy", "system": "new"})
        assert replaced.status_code == 409
        last = [json.loads(line) for line in chunks if line.strip()][-1]
        assert last["done"] is True and "error" not in last
    assert "busy" in {m["name"].split(":")[0] for m in http.get("/api/ps").json()["models"]}
    assert http.request("DELETE", "/api/delete", json={"model": "busy"}).status_code == 200
    assert "busy" not in {m["name"].split(":")[0] for m in http.get("/api/ps").json()["models"]}


def test_the_runtime_lives_after_all_of_it(runtime: RuntimeProcess) -> None:
    assert_alive(runtime.url)


def test_uploads_and_imports_that_would_fill_the_disk_are_507(tmp_path: Path) -> None:
    """A margin larger than any disk: nothing may be written."""
    process, url = start_runtime(tmp_path, RUNTIME_THREADS="1", RUNTIME_BLOB_FREE_MARGIN=str(2**62))
    try:
        with httpx.Client(base_url=url, timeout=scaled(60)) as http:
            reply = http.post(f"/api/blobs/{sha(b'data')}", content=b"data")
            assert reply.status_code == 507 and "not enough disk space" in reply.json()["error"]
            reply = http.post("/api/create", json={"model": "big", "from": str(smollm2_gguf())})
            assert reply.status_code == 507 and "not enough disk space" in reply.json()["error"]
            assert names(http) == {MODEL, "all-minilm:latest"} or names(http) == {MODEL}
    finally:
        process.stop()
