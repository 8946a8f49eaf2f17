"""One runtime of the smollm2:135m group dies: the group keeps answering through the other one.

The proxy here has a runtime of its own as its first deployment (killed by the test) and the
session's second runtime as the other, so the shared runtimes stay up.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hub_support import MASTER_KEY, bearer, chat_body, start_hub_proxy

from procs import ManagedProcess, start_runtime

SURVIVOR = "smollm2-135m-runtime2"


@pytest.fixture(scope="module")
def doomed_runtime(models_dir: Path) -> Iterator[tuple[ManagedProcess, str]]:
    process, base_url = start_runtime(models_dir)
    yield process, base_url
    process.stop()


@pytest.fixture(scope="module")
def failover_proxy(
    doomed_runtime: tuple[ManagedProcess, str], runtimes: tuple[str, str], database_url: str
) -> Iterator[httpx.Client]:
    process, base_url = start_hub_proxy(database_url, doomed_runtime[1], runtimes[1])
    with httpx.Client(base_url=base_url, timeout=120) as client:
        yield client
    process.stop()


def answered_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-litellm-model-id"]


def test_both_runtimes_serve_the_group_while_alive(failover_proxy: httpx.Client) -> None:
    deployments = {
        answered_by(
            failover_proxy.post("/v1/chat/completions", headers=bearer(MASTER_KEY), json=chat_body(max_tokens=2))
        )
        for _ in range(12)
    }
    assert deployments == {"smollm2-135m-runtime1", SURVIVOR}  # simple-shuffle: 1 in 2048 chance of a false alarm


def test_every_request_succeeds_after_a_runtime_is_killed(
    failover_proxy: httpx.Client, doomed_runtime: tuple[ManagedProcess, str]
) -> None:
    doomed_runtime[0].kill()
    for _ in range(6):
        response = failover_proxy.post("/v1/chat/completions", headers=bearer(MASTER_KEY), json=chat_body(max_tokens=4))
        assert answered_by(response) == SURVIVOR
    with failover_proxy.stream(
        "POST", "/v1/chat/completions", headers=bearer(MASTER_KEY), json=chat_body(max_tokens=4, stream=True)
    ) as stream:
        assert stream.status_code == 200
        assert any(line.startswith("data: {") for line in stream.iter_lines())
