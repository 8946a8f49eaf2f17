"""One real runtime process (python -m local_runtime) for the module tests, with its own models dir."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from runtime_support import RuntimeProcess, free_port


@pytest.fixture(scope="session")
def runtime_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime-models")


@pytest.fixture(scope="session")
def runtime(runtime_models_dir: Path) -> Iterator[RuntimeProcess]:
    process = RuntimeProcess(runtime_models_dir, free_port())
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def base_url(runtime: RuntimeProcess) -> str:
    return runtime.url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        yield client
