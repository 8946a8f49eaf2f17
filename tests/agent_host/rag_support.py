"""RAG test helpers: a host on its own database and Chroma dir, the /rag API calls, and files made in the test."""

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from host_support import auth, shared_master_key, start_host

from procs import ManagedProcess, PostgresInstance

# Nothing listens on the discard port: a chat through this host would fail, and none is made.
NO_PROXY = "http://127.0.0.1:9"
Files = list[tuple[str, tuple[str, bytes, str]]]


def own_database(postgres: PostgresInstance, name: str) -> str:
    """A database for one test module, so its collections and leftovers are its own."""
    return postgres.new_database(name)


def start_rag_host(database_url: str, chroma: Path, home: Path, **env: str) -> tuple[ManagedProcess, str]:
    """A host whose Chroma and model cache live in temp dirs, with HOME there too (Chroma's model cache).

    RAG calls no model, so the host gets no proxy: these tests need no runtimes.
    """
    return start_host(
        NO_PROXY,
        database_url,
        shared_master_key(),
        CHROMA_PATH=str(chroma),
        HOME=str(home),
        **env,
    )


def create_collection(url: str, name: str, **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/rag/collections", json={"name": name, **fields}, headers=auth(), timeout=30)
    assert response.status_code == 201, response.text
    return dict(response.json())


def upload(url: str, collection: str, files: Files, wait: bool = True, timeout: float = 300) -> httpx.Response:
    return httpx.post(
        f"{url}/rag/collections/{collection}/documents",
        params={"wait": str(wait).lower()},
        files=files,
        headers=auth(),
        timeout=timeout,
    )


def documents(url: str, collection: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/rag/collections/{collection}/documents", headers=auth(), timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json())


def query(url: str, text: str, collections: list[str], **fields: Any) -> list[dict[str, Any]]:
    body = {"query": text, "collections": collections, **fields}
    response = httpx.post(f"{url}/rag/query", json=body, headers=auth(), timeout=60)
    assert response.status_code == 200, response.text
    return list(response.json()["hits"])


def job_until_done(url: str, job_id: str, timeout: float = 300) -> list[dict[str, Any]]:
    """Every state the job was seen in, polled until it finished."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/rag/jobs/{job_id}", headers=auth(), timeout=30)
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if seen[-1]["status"] in ("done", "failed"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {seen[-1]['status']} after {timeout} s")


def error_of(response: httpx.Response) -> dict[str, Any]:
    return dict(response.json()["error"])


def txt(name: str, text: str) -> tuple[str, tuple[str, bytes, str]]:
    return ("files", (name, text.encode(), "text/plain"))


def part(name: str, data: bytes, content_type: str) -> tuple[str, tuple[str, bytes, str]]:
    return ("files", (name, data, content_type))


def multipart_raw(filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """A multipart body written by hand, so the filename reaches the host exactly as given (path parts too)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
