"""Two hosts and two ingestion workers behind HAProxy, on one database and one Chroma server: they agree.

Everything is a real process: PostgreSQL (with procrastinate's queue), `chroma run`, `python -m agent_host.worker`,
`python -m agent_host` and HAProxy; the chat test goes through the session's real proxy and embedded model.
"""

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from host_support import auth, chat_body, new_session, shared_master_key, start_host, stored_messages
from rag_support import create_collection, documents, job_until_done, own_database, query, txt, upload

from procs import (
    ManagedProcess,
    PostgresInstance,
    scaled,
    start_balancer,
    start_chroma_server,
    start_rag_worker,
)

BULK_FILES = 16


@dataclass
class Tier:
    database: str
    chroma: str
    hosts: list[tuple[ManagedProcess, str]]
    workers: list[tuple[ManagedProcess, str]]
    balancer: str

    @property
    def a(self) -> str:
        return self.hosts[0][1]

    @property
    def b(self) -> str:
        return self.hosts[1][1]


def scaled_host(proxy_url: str, database: str, chroma: str) -> tuple[ManagedProcess, str]:
    return start_host(proxy_url, database, shared_master_key(), RAG_INLINE_WORKER="false", CHROMA_URL=chroma)


@pytest.fixture(scope="module")
def tier(postgres: PostgresInstance, proxy: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    database = own_database(postgres, "rag_scale")
    started: list[ManagedProcess] = []
    try:
        chroma, chroma_url = start_chroma_server(tmp_path_factory.mktemp("chroma-server"))
        started.append(chroma)
        workers = [start_rag_worker(database, chroma_url) for _ in range(2)]
        started += [process for process, _ in workers]
        hosts = [scaled_host(proxy, database, chroma_url) for _ in range(2)]
        started += [process for process, _ in hosts]
        balancer, url = start_balancer([u for _, u in hosts], "/health/ready")
        started.append(balancer)
        yield Tier(database, chroma_url, hosts, workers, url)
    finally:
        for process in reversed(started):
            process.stop()


def essay(i: int) -> str:
    return " ".join(f"Register {i} line {n}: the narwhal{i} pod logged {n * 3} dives." for n in range(60))


def bulk(prefix: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [txt(f"{prefix}{i:02d}.txt", essay(i)) for i in range(BULK_FILES)]


def until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {scaled(timeout):.0f} s: {what}")


def job_state(url: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/rag/jobs/{job_id}", headers=auth(), timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_whole(url: str, collection: str, prefix: str) -> None:
    """Every file is ready, each with all of its chunks in the index exactly once."""
    listed = documents(url, collection)
    assert sorted(d["filename"] for d in listed) == [f"{prefix}{i:02d}.txt" for i in range(BULK_FILES)]
    assert all(d["status"] == "ready" for d in listed)
    for document in listed:
        hits = query(
            url, "narwhal pod dives", [collection], mode="vector", top_k=50, min_score=-1,
            filters={"source": document["filename"]},
        )  # fmt: skip
        assert len(hits) == document["chunks"] <= 50, document["filename"]
        assert len({hit["chunk_id"] for hit in hits}) == len(hits)


def test_an_upload_through_one_host_is_followed_and_found_through_the_other(tier: Tier) -> None:
    create_collection(tier.a, "shared-notes")
    files = [
        txt("harbour.txt", "The harbour master logs every tanker that docks at berth seven after midnight."),
        txt("orchard.txt", "Quince trees in the north orchard are pruned in late February each year."),
    ]
    response = upload(tier.a, "shared-notes", files, wait=False)
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]["id"]
    final = job_until_done(tier.b, job_id, timeout=scaled(120))[-1]
    assert final["status"] == "done" and [f["status"] for f in final["files"]] == ["indexed", "indexed"]
    for mode in ("vector", "bm25", "hybrid"):
        hits = query(tier.b, "which berth do tankers dock at", ["shared-notes"], mode=mode)
        assert hits and hits[0]["source"] == "harbour.txt", (mode, hits)
    keyword = query(tier.b, "quince orchard pruned", ["shared-notes"], mode="bm25")
    assert keyword[0]["source"] == "orchard.txt"
    # A delete through B hides the document from A's next query at once (the collection's version moved).
    harbour = next(d for d in documents(tier.b, "shared-notes") if d["filename"] == "harbour.txt")
    assert query(tier.a, "tanker berth", ["shared-notes"], mode="bm25")[0]["source"] == "harbour.txt"
    deleted = httpx.delete(
        f"{tier.b}/rag/collections/shared-notes/documents/{harbour['id']}", headers=auth(), timeout=30
    )
    assert deleted.status_code == 204
    assert all(h["source"] != "harbour.txt" for h in query(tier.a, "tanker berth", ["shared-notes"], mode="bm25"))
    assert all(h["source"] != "harbour.txt" for h in query(tier.a, "tanker berth", ["shared-notes"], mode="vector"))


def running_worker_pid(database: str, job_id: str) -> int:
    """The pid of the worker running `job_id` (its name, name@host:pid, is on the job's row)."""
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT worker FROM rag_jobs WHERE id = %s AND status = 'running'", (job_id,)).fetchone()
    assert row is not None and row[0], "no worker runs the job"
    return int(str(row[0]).rsplit(":", 1)[1])


def test_a_worker_killed_mid_job_leaves_the_job_to_the_other_with_every_document_whole(tier: Tier) -> None:
    create_collection(tier.balancer, "killed-worker")
    response = upload(tier.balancer, "killed-worker", bulk("ledger"), wait=False)
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]["id"]
    until(lambda: job_state(tier.b, job_id)["chunks_done"] > 0, 120, "the job writes its first chunks")
    pid = running_worker_pid(tier.database, job_id)
    victim = next(process for process, _ in tier.workers if process.proc is not None and process.proc.pid == pid)
    os.kill(pid, signal.SIGKILL)
    victim.proc.wait()  # type: ignore[union-attr]
    try:
        mid = job_state(tier.a, job_id)
        assert mid["status"] == "running" and mid["files_done"] < BULK_FILES, "the kill came mid-job"
        final = job_until_done(tier.a, job_id, timeout=scaled(240))[-1]
        assert final["status"] == "done", final
        assert [f["status"] for f in final["files"]] == ["indexed"] * BULK_FILES, final["files"]
        assert_whole(tier.b, "killed-worker", "ledger")
        with psycopg.connect(tier.database) as conn:
            (attempts,) = conn.execute("SELECT attempts FROM rag_jobs WHERE id = %s", (job_id,)).fetchone() or (0,)
        assert attempts == 2  # the killed worker's attempt, then the other's
    finally:
        victim.start()


def test_a_host_restarted_mid_job_lets_the_job_go_on(tier: Tier) -> None:
    create_collection(tier.a, "host-restart")
    response = upload(tier.a, "host-restart", bulk("minutes"), wait=False)
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]["id"]
    process = tier.hosts[0][0]
    process.kill()
    process.start()
    final = job_until_done(tier.b, job_id, timeout=scaled(240))[-1]
    assert final["status"] == "done" and final["files_done"] == BULK_FILES
    assert_whole(tier.a, "host-restart", "minutes")


def test_a_host_starting_during_an_ingestion_removes_nothing(tier: Tier, proxy: str) -> None:
    create_collection(tier.a, "newcomer")
    response = upload(tier.a, "newcomer", bulk("survey"), wait=False)
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]["id"]
    until(lambda: job_state(tier.a, job_id)["status"] == "running", 120, "the job runs")
    # A third host starts (and sweeps) while the job is running and while its documents are still 'indexing'.
    indexing = {d["id"] for d in documents(tier.a, "newcomer") if d["status"] == "indexing"}
    newcomer, url = scaled_host(proxy, tier.database, tier.chroma)
    try:
        still_there = {d["id"] for d in documents(url, "newcomer")}
        assert indexing and indexing <= still_there  # its start-up sweep took nothing in flight
        final = job_until_done(url, job_id, timeout=scaled(240))[-1]
        # What a replica serves comes from the shared services, not its own (fresh, empty) data dir.
        hits = query(url, "quince orchard", ["shared-notes"], mode="hybrid")
        assert hits and hits[0]["source"] == "orchard.txt"
    finally:
        newcomer.stop()
    assert final["status"] == "done" and [f["status"] for f in final["files"]] == ["indexed"] * BULK_FILES
    assert_whole(tier.b, "newcomer", "survey")


def test_a_stream_cut_when_its_host_is_killed_stores_nothing_half(tier: Tier) -> None:
    session = new_session(tier.a, title="cut")
    first = httpx.post(
        f"{tier.a}/v1/chat/completions",
        json={**chat_body("Say hello.", max_tokens=8), "session_id": session},
        headers=auth(),
        timeout=scaled(120),
    )
    assert first.status_code == 200, first.text
    before = stored_messages(tier.b, session)
    assert [m["role"] for m in before] == ["user", "assistant"]
    body = {**chat_body("Tell me a long story about the sea.", max_tokens=400), "session_id": session, "stream": True}
    process = tier.hosts[0][0]
    with httpx.stream("POST", f"{tier.a}/v1/chat/completions", json=body, headers=auth(), timeout=scaled(120)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: ") and json.loads(line[6:]).get("choices"):
                break  # the first generated chunk has arrived: the turn is mid-stream
        process.kill()  # the last test of the module: host A stays down
    after = stored_messages(tier.b, session)
    assert after == before  # the cut turn is stored whole or not at all: here, with its host dead, not at all
