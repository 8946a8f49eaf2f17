"""One real runtime process (python -m local_runtime) for the module tests, with its own models dir."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from runtime_support import RuntimeProcess

from procs import start_runtime


@pytest.fixture(scope="session")
def runtime_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime-models")


@pytest.fixture(scope="session")
def runtime(runtime_models_dir: Path) -> Iterator[RuntimeProcess]:
    # One llama.cpp thread: with as many threads as cores, its spinning thread barrier runs 3x (and at
    # worst 50x) slower whenever another process wants a core, which made timing tests flaky.
    # Eight slots per runner, as the bench's bare llama-server (-np 8).
    process, url = start_runtime(runtime_models_dir, RUNTIME_THREADS="1", RUNTIME_NUM_PARALLEL="8")
    try:
        yield RuntimeProcess(process, url)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def base_url(runtime: RuntimeProcess) -> str:
    return runtime.url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        yield client
