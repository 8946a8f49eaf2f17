"""Operations: OpenAPI docs, request ids echoed and found in the structured JSON log."""

import json

import httpx
from host_support import auth

from procs import ManagedProcess


def test_openapi_docs_are_served(host: str) -> None:
    assert httpx.get(f"{host}/docs").status_code == 200
    paths = httpx.get(f"{host}/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/models", "/sessions", "/health/ready"} <= set(paths)


def test_every_request_is_logged_as_json_with_its_request_id(host_process: tuple[ManagedProcess, str]) -> None:
    process, host = host_process
    response = httpx.get(f"{host}/sessions", headers={**auth(), "x-request-id": "trace-me-123"})
    assert response.headers["x-request-id"] == "trace-me-123"
    lines = [json.loads(line) for line in process.log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["request_id"] == "trace-me-123"]
    assert access and access[-1]["status"] == 200 and "duration_ms" in access[-1]


def test_a_request_without_an_id_gets_one(host: str) -> None:
    assert httpx.get(f"{host}/health").headers["x-request-id"]
