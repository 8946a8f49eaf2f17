"""Schemathesis against /openapi.json of a real runtime: any input is an answer the schema declares, never a 5xx."""

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings, strategies
from registry_support import local_registry
from runtime_support import MODEL, RuntimeProcess
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from procs import start_runtime

pytestmark = pytest.mark.timeout(300)
# Small, so that the valid requests among the generated ones cost a few tokens and a small context each.
MAX_PREDICT = 4
MAX_CTX = 256
SEED = 20260410
CASES_PER_ROUTE = 50
OPERATIONS = [
    "GET /api/version", "GET /api/tags", "GET /api/ps", "POST /api/show", "POST /api/chat", "POST /api/generate",
    "POST /api/embed", "POST /api/embeddings", "POST /api/pull", "POST /api/create", "POST /api/copy",
    "DELETE /api/delete", "HEAD /api/blobs/{digest}", "POST /api/blobs/{digest}",
    "GET /v1/models", "POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings",
]  # fmt: skip
# Negative cases (bodies that break the schema) for the routes that read a JSON body; a blob's body is any bytes.
JSON_BODIES = [operation for operation in OPERATIONS if operation.split()[0] in ("POST", "DELETE")
               and "/api/blobs/" not in operation]  # fmt: skip


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    # Pulls go to a local registry that holds no model (tests never reach the internet): a valid name is
    # Ollama's 404, not an unreachable registry's 503, which is no fault of the request.
    with local_registry({}) as registry:
        process, url = start_runtime(
            tmp_path_factory.mktemp("fuzzed-runtime-models"),
            RUNTIME_THREADS="1",
            RUNTIME_MAX_PREDICT=str(MAX_PREDICT),
            RUNTIME_MAX_CTX=str(MAX_CTX),
            RUNTIME_REGISTRY=registry.host,
            RUNTIME_INSECURE_REGISTRIES=registry.host,
        )
        try:
            yield RuntimeProcess(process, url)
        finally:
            process.stop()


@pytest.fixture(scope="module")
def runtime_schema(fuzzed: RuntimeProcess) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")


def test_the_schema_lists_every_route(runtime_schema: BaseSchema) -> None:
    listed = [f"{result.ok().method.upper()} {result.ok().path}" for result in runtime_schema.get_all_operations()]
    assert sorted(listed) == sorted(OPERATIONS)


# schemathesis's own pytest plugin (from_fixture) breaks on pytest 9, so hypothesis drives its strategies.
@pytest.mark.parametrize(
    ("operation", "mode"),
    [(operation, mode) for operation in OPERATIONS for mode in GenerationMode if operation in JSON_BODIES or
     mode is GenerationMode.POSITIVE],
)  # fmt: skip
def test_any_input_gets_a_declared_answer_and_never_a_server_error(
    runtime_schema: BaseSchema, operation: str, mode: GenerationMode
) -> None:
    method, path = operation.split()
    cases = runtime_schema[path][method].as_strategy(generation_mode=mode)

    @given(case=cases, real_model=strategies.booleans())
    @settings(max_examples=CASES_PER_ROUTE, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @seed(SEED)
    def check(case: Case, real_model: bool) -> None:
        if real_model and isinstance(case.body, dict):
            case.body["model"] = MODEL  # else nearly every generated name is a 404 and no generation runs
        case.call_and_validate(checks=[not_a_server_error, status_code_conformance], timeout=60)

    check()


@pytest.mark.parametrize("num_predict", [100, -1, -2])
def test_num_predict_is_capped(fuzzed: RuntimeProcess, num_predict: int) -> None:
    body = {"model": MODEL, "prompt": "Write a long story.", "stream": False, "options": {"num_predict": num_predict}}
    reply = httpx.post(f"{fuzzed.url}/api/generate", json=body, timeout=60).json()
    assert reply["eval_count"] <= MAX_PREDICT
    assert reply["done_reason"] in ("stop", "length")


def test_max_tokens_is_capped(fuzzed: RuntimeProcess) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 100}
    reply = httpx.post(f"{fuzzed.url}/v1/chat/completions", json=body, timeout=60).json()
    assert reply["usage"]["completion_tokens"] <= MAX_PREDICT
