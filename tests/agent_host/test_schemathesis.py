"""Schemathesis against the agent host's /openapi.json: any input gets an answer the schema declares, never a 5xx.

A real host on the real proxy, with its own database and its own MCP servers files (the repository's stay as they
are). Seeded and bounded: a few cases per operation keep the run to a couple of minutes on two cores.
"""

import hashlib
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from host_support import MODEL, auth, shared_master_key, start_host
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from procs import REPO_ROOT, PostgresInstance

pytestmark = pytest.mark.timeout(600)
SEED = 20261202
CASES_PER_OPERATION = 20
TRACKED_SERVERS = REPO_ROOT / "agent_host" / "mcp_servers.json"
# Streams and agent runs of a generated request are cut short: a case costs a token or two, not a long reply.
MAX_TOKENS = 4
OPERATIONS = [
    "GET /health", "GET /health/ready", "POST /v1/chat/completions", "GET /v1/models",
    "POST /auth/login", "POST /auth/logout", "GET /auth/me", "GET /auth/keys", "POST /auth/keys",
    "DELETE /auth/keys/{key_id}", "GET /users", "POST /users", "PATCH /users/{account_id}",
    "POST /users/{account_id}/password", "GET /usage",
    "POST /sessions", "GET /sessions", "GET /sessions/{session_id}", "PATCH /sessions/{session_id}",
    "DELETE /sessions/{session_id}", "GET /sessions/{session_id}/messages", "DELETE /sessions/{session_id}/messages",
    "PATCH /sessions/{session_id}/messages/{message_id}", "DELETE /sessions/{session_id}/messages/{message_id}",
    "GET /rag/collections", "POST /rag/collections", "GET /rag/collections/{name}", "PATCH /rag/collections/{name}",
    "DELETE /rag/collections/{name}",
    "GET /rag/collections/{name}/documents", "POST /rag/collections/{name}/documents",
    "DELETE /rag/collections/{name}/documents/{document_id}",
    "POST /rag/collections/{name}/documents/{document_id}/reindex", "GET /rag/jobs/{job_id}", "POST /rag/query",
    "GET /mcp/servers", "POST /mcp/servers", "GET /mcp/servers/{name}", "DELETE /mcp/servers/{name}",
    "POST /mcp/servers/{name}/refresh", "GET /agents", "POST /agents/run",
]  # fmt: skip
# Operations with a body or query to get wrong (a path string alone cannot be made invalid).
NEGATIVE = {
    "POST /v1/chat/completions", "POST /sessions", "GET /sessions", "PATCH /sessions/{session_id}",
    "PATCH /sessions/{session_id}/messages/{message_id}", "DELETE /sessions/{session_id}/messages",
    "PATCH /rag/collections/{name}", "GET /rag/collections",
    "POST /rag/collections", "POST /rag/collections/{name}/documents", "POST /rag/query", "POST /mcp/servers",
    "POST /agents/run",
}  # fmt: skip


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fuzzed(proxy: str, postgres: PostgresInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tracked = digest(TRACKED_SERVERS)
    data = tmp_path_factory.mktemp("fuzzed-host")
    (data / "mcp_servers.json").write_text('{"mcpServers": {}}')
    process, url = start_host(
        proxy,
        postgres.new_database("fuzzed"),
        shared_master_key(),
        MCP_SERVERS_FILE=str(data / "mcp_servers.json"),
        MCP_RUNTIME_SERVERS_FILE=str(data / "mcp_servers.runtime.json"),
        AGENT_MAX_STEPS="2",
        AGENT_TOTAL_TIMEOUT="30",
        REPLY_TOKENS="8",
    )
    try:
        yield url
    finally:
        process.stop()
    assert digest(TRACKED_SERVERS) == tracked, "the fuzzed host changed the tracked agent_host/mcp_servers.json"


@pytest.fixture(scope="module")
def host_schema(fuzzed: str) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed}/openapi.json", headers=auth())


def test_the_schema_lists_every_route(host_schema: BaseSchema) -> None:
    listed = [f"{result.ok().method.upper()} {result.ok().path}" for result in host_schema.get_all_operations()]
    assert sorted(listed) == sorted(OPERATIONS)


# schemathesis's own pytest plugin (from_fixture) breaks on pytest 9, so hypothesis drives its strategies.
@pytest.mark.parametrize(
    ("operation", "mode"),
    [
        (operation, mode)
        for operation in OPERATIONS
        for mode in GenerationMode
        if mode is GenerationMode.POSITIVE or operation in NEGATIVE
    ],
)
def test_any_input_gets_a_declared_answer_and_never_a_server_error(
    host_schema: BaseSchema, operation: str, mode: GenerationMode
) -> None:
    method, path = operation.split()
    cases = host_schema[path][method].as_strategy(generation_mode=mode)

    @given(case=cases)
    @settings(max_examples=CASES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @seed(SEED)
    def check(case: Case) -> None:
        if isinstance(case.body, dict) and path == "/v1/chat/completions":
            # Half the cases on the served model, so the pipeline runs to the proxy and back, briefly.
            if zlib.crc32(repr(case.body).encode()) % 2:
                case.body["model"] = MODEL
            case.body["max_tokens"] = MAX_TOKENS
        case.call_and_validate(headers=auth(), checks=[not_a_server_error, status_code_conformance], timeout=60)

    check()
