"""The index outlives the host process: same hits after a restart, and a job cut by a crash is finished whole."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from host_support import auth
from rag_files import pdf_bytes
from rag_support import (
    create_collection,
    documents,
    job_until_done,
    own_database,
    part,
    query,
    start_rag_host,
    txt,
    upload,
)

from procs import ManagedProcess, PostgresInstance, scaled

QUESTIONS = [
    "Which form is used to claim travel costs?",
    "How often are the beehives inspected?",
    "What powers the lighthouse lamp?",
]
BULK_FILES = 20


@dataclass
class Host:
    process: ManagedProcess
    url: str
    chroma: Path
    home: Path


@pytest.fixture(scope="module")
def host(postgres: PostgresInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    chroma = tmp_path_factory.mktemp("rag-restart-chroma")
    home = tmp_path_factory.mktemp("rag-restart-home")
    process, url = start_rag_host(own_database(postgres, "rag_restart"), chroma, home)
    yield Host(process, url, chroma, home)
    process.stop()


def restart(host: Host, crash: bool = False) -> None:
    if crash:
        host.process.kill()
    else:
        host.process.stop()
    host.process.start()


def snapshot(url: str, collection: str) -> dict[tuple[str, str], list[tuple[str, float]]]:
    return {
        (question, mode): [
            (hit["chunk_id"], round(hit["score"], 4)) for hit in query(url, question, [collection], mode=mode)
        ]
        for question in QUESTIONS
        for mode in ("hybrid", "vector", "bm25")
    }


def test_queries_return_the_same_hits_after_a_restart(host: Host) -> None:
    create_collection(host.url, "atlas")
    files = [
        part(
            "claims.pdf",
            pdf_bytes(["Staff travel policy.", "Travel costs are claimed with form TR-7 within thirty days."]),
            "application/pdf",
        ),
        part(
            "bees.md",
            b"# Apiary\n\n## Inspections\nThe beehives are inspected every ten days in summer.",
            "text/markdown",
        ),
        txt("lighthouse.txt", "The lighthouse lamp is powered by a diesel generator and a bank of batteries."),
    ]
    assert upload(host.url, "atlas", files).status_code == 200
    before = snapshot(host.url, "atlas")
    assert all(before[(q, "hybrid")] for q in QUESTIONS)
    restart(host)
    assert snapshot(host.url, "atlas") == before


def essay(i: int) -> str:
    return " ".join(f"Ledger {i} entry {line}: the quokka{i} colony counted {line * 7} burrows." for line in range(40))


def test_a_job_cut_by_a_crash_is_finished_after_the_restart_with_every_document_whole(host: Host) -> None:
    create_collection(host.url, "bulk")
    files = [txt(f"ledger{i:02d}.txt", essay(i)) for i in range(BULK_FILES)]
    response = upload(host.url, "bulk", files, wait=False)
    assert response.status_code == 202, response.text
    job_id = response.json()["job"]["id"]
    while True:
        state = httpx.get(f"{host.url}/rag/jobs/{job_id}", headers=auth(), timeout=10).json()
        if state["files_done"] >= 1:
            break
        time.sleep(0.02)
    assert state["status"] == "running"
    restart(host, crash=True)

    # The job lives in PostgreSQL and its queue entry is handed back once the dead worker's heartbeat is missed.
    final = job_until_done(host.url, job_id, timeout=scaled(240))[-1]
    assert final["status"] == "done", final
    assert [f["status"] for f in final["files"]] == ["indexed"] * BULK_FILES
    listed = documents(host.url, "bulk")
    assert len(listed) == BULK_FILES and all(d["status"] == "ready" for d in listed)
    for i in range(BULK_FILES):
        name = f"ledger{i:02d}.txt"
        hits = query(
            host.url, f"quokka{i} colony", ["bulk"], mode="vector", top_k=50, min_score=-1, filters={"source": name}
        )
        chunks = next(d["chunks"] for d in listed if d["filename"] == name)
        assert len(hits) == min(chunks, 50), name  # all of a document's chunks once: none lost, none twice
    again = upload(host.url, "bulk", files)
    assert {f["status"] for f in again.json()["files"]} == {"duplicate"}


def test_chroma_holds_exactly_the_chunks_of_ready_documents_and_no_embedding_function(host: Host) -> None:
    expected: dict[str, int] = {}
    for collection in httpx.get(f"{host.url}/rag/collections", headers=auth(), timeout=10).json():
        expected[collection["name"]] = sum(d["chunks"] for d in documents(host.url, collection["name"]))
    host.process.stop()
    try:
        import chromadb
        from chromadb.config import Settings

        client = chromadb.PersistentClient(path=str(host.chroma), settings=Settings(anonymized_telemetry=False))
        stored: dict[str, Any] = {c.name: c for c in client.list_collections()}
        assert set(stored) == {f"gl_{name}" for name in expected}
        for name, chunks in expected.items():
            collection = stored[f"gl_{name}"]
            assert collection.count() == chunks, name  # no chunk of a failed, deleted or crashed document
            assert collection.configuration.get("embedding_function") is None
            assert collection.configuration["hnsw"]["space"] == "cosine"
        assert not (host.home / ".cache" / "chroma").exists()
    finally:
        host.process.start()
