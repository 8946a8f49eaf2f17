"""Each object is its person's: another account's token on a session, its messages, notes (agent runs), a
collection, its documents or a job is a 404; a shared collection is readable by everyone and read-only.

A real host on the real proxy and PostgreSQL; the two people are accounts made with AccountStore and signed in.
"""

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from account_support import bearer, signed_in
from host_support import chat_body
from rag_support import txt

from procs import PostgresInstance, scaled

HANDBOOK = "The office opens at 8 am. Parking is free for staff in the north lot. Lunch is served at noon."


class Person:
    def __init__(self, host: str, token: str, login: str) -> None:
        self.login = login
        self.http = httpx.Client(base_url=host, headers=bearer(token), timeout=120)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def job_done(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + scaled(300)
        while True:
            job = self.ok("GET", f"/rag/jobs/{job_id}")
            if job["status"] in ("done", "failed") or time.monotonic() > deadline:
                return dict(job)
            time.sleep(0.1)


People = tuple["Person", "Person", "Person"]


@pytest.fixture(scope="module")
def people(host: str, postgres: PostgresInstance) -> Iterator[People]:
    """Alice, Bob and an administrator."""
    made = []
    for prefix, role in (("alice", "user"), ("bob", "user"), ("boss", "admin")):
        account, token = signed_in(postgres.url("genailabs"), prefix, role)
        made.append(Person(host, token, account.login))
    yield made[0], made[1], made[2]
    for person in made:
        person.http.close()


def refused(person: Person, calls: list[tuple[str, str, dict[str, Any]]], status: int, kind: str | None = None) -> None:
    for method, path, kwargs in calls:
        response = person.http.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        if kind is not None:
            assert response.json()["error"]["type"] == kind, (method, path, response.text)


def collection_with_a_document(owner: Person) -> tuple[str, str, str]:
    """A new collection of the owner's holding the handbook: its name, the document's id and the job's id."""
    name = f"handbook-{uuid.uuid4().hex[:8]}"
    owner.ok("POST", "/rag/collections", 201, json={"name": name})
    upload = owner.ok("POST", f"/rag/collections/{name}/documents", 202, files=[txt("handbook.txt", HANDBOOK)])
    assert owner.job_done(upload["job"]["id"])["status"] == "done"
    return name, upload["files"][0]["document_id"], upload["job"]["id"]


def test_another_persons_session_messages_and_notes_are_not_found(people: People) -> None:
    alice, bob, admin = people
    session = alice.ok("POST", "/sessions", 201, json={"title": "alice's"})["id"]
    alice.ok("POST", "/v1/chat/completions", json=chat_body("Hi", max_tokens=4, session_id=session))
    message = alice.ok("GET", f"/sessions/{session}/messages")[0]["id"]
    path = f"/sessions/{session}"
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", path, {}),
        ("PATCH", path, {"json": {"title": "bob's now"}}),
        ("GET", f"{path}/messages", {}),
        ("PATCH", f"{path}/messages/{message}", {"json": {"content": "overwritten"}}),
        ("DELETE", f"{path}/messages/{message}", {}),
        ("DELETE", f"{path}/messages", {"params": {"after": message}}),
        ("POST", "/v1/chat/completions", {"json": chat_body("Tell me", session_id=session)}),
        ("POST", "/agents/run", {"json": {"task": "list my notes", "session_id": session}}),
        ("DELETE", path, {}),
    ]
    refused(bob, calls, 404, "session_not_found")
    assert session not in [s["id"] for s in bob.ok("GET", "/sessions")]
    refused(admin, [("GET", path, {}), ("GET", f"{path}/messages", {})], 404, "session_not_found")
    assert alice.ok("GET", f"{path}/messages")[0]["content"] == "Hi"
    assert alice.ok("GET", path)["title"] == "alice's"


def test_another_persons_collection_documents_and_jobs_are_not_found(people: People) -> None:
    alice, bob, admin = people
    name, document, job = collection_with_a_document(alice)
    path = f"/rag/collections/{name}"
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", path, {}),
        ("GET", f"{path}/documents", {}),
        ("POST", f"{path}/documents", {"files": [txt("mine.txt", "Bob's text.")]}),
        ("DELETE", f"{path}/documents/{document}", {}),
        ("POST", f"{path}/documents/{document}/reindex", {}),
        ("PATCH", path, {"json": {"shared": True}}),
        ("POST", "/rag/query", {"json": {"query": "parking", "collections": [name]}}),
        ("POST", "/v1/chat/completions", {"json": chat_body("Where to park?", rag={"collections": [name]})}),
        ("DELETE", path, {}),
    ]
    refused(bob, calls, 404, "collection_not_found")
    refused(bob, [("GET", f"/rag/jobs/{job}", {})], 404, "job_not_found")
    assert name not in [c["name"] for c in bob.ok("GET", "/rag/collections")]
    refused(bob, [("GET", "/rag/collections", {"params": {"all": "true"}})], 403)
    # Names are global: bob cannot take alice's.
    refused(bob, [("POST", "/rag/collections", {"json": {"name": name}})], 409, "collection_exists")
    mine = alice.ok("GET", path)
    assert (mine["owner_login"], mine["shared"], mine["writable"], mine["documents"]) == (alice.login, False, True, 1)
    # An administrator may read and change every collection, and lists them all with all=true.
    assert name in [c["name"] for c in admin.ok("GET", "/rag/collections", params={"all": "true"})]
    assert name not in [c["name"] for c in admin.ok("GET", "/rag/collections")]
    assert admin.ok("GET", path)["writable"] is True


def test_a_shared_collection_is_readable_by_everyone_and_read_only(people: People) -> None:
    alice, bob, _ = people
    name, document, job = collection_with_a_document(alice)
    path = f"/rag/collections/{name}"
    assert alice.ok("PATCH", path, json={"shared": True})["shared"] is True

    listed = {c["name"]: c for c in bob.ok("GET", "/rag/collections")}
    assert (listed[name]["shared"], listed[name]["writable"], listed[name]["owner_login"]) == (True, False, alice.login)
    assert [d["filename"] for d in bob.ok("GET", f"{path}/documents")] == ["handbook.txt"]
    hits = bob.ok("POST", "/rag/query", json={"query": "Where can staff park?", "collections": [name]})["hits"]
    assert hits and "north lot" in hits[0]["text"]
    session = bob.ok("POST", "/sessions", 201, json={"title": "bob's", "collections": [name]})["id"]
    answer = bob.ok("POST", "/v1/chat/completions", json=chat_body("Where can staff park?", session_id=session))
    assert answer["citations"] and answer["citations"][0]["collection"] == name
    stored = bob.ok("GET", f"/sessions/{session}/messages")[-1]
    assert stored["role"] == "assistant" and stored["metadata"]["citations"] == answer["citations"]
    assert stored["metadata"]["context"]["sources"] == len(answer["citations"])

    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{path}/documents", {"files": [txt("mine.txt", "Bob's text.")]}),
        ("DELETE", f"{path}/documents/{document}", {}),
        ("POST", f"{path}/documents/{document}/reindex", {}),
        ("PATCH", path, {"json": {"shared": False}}),
        ("DELETE", path, {}),
    ]
    refused(bob, calls, 403, "forbidden")
    refused(bob, [("GET", f"/rag/jobs/{job}", {})], 404, "job_not_found")
    assert alice.ok("GET", path)["documents"] == 1

    assert alice.ok("PATCH", path, json={"shared": False})["shared"] is False
    refused(bob, [("GET", path, {}), ("GET", f"{path}/documents", {})], 404, "collection_not_found")
