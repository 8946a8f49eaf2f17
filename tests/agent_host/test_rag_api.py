"""The /rag API on a real host: uploads of every type, bad files, jobs, queries, filters, delete and re-index."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from host_support import auth
from rag_files import HTML, docx_bytes, encrypted_pdf, image_only_pdf, pdf_bytes
from rag_support import (
    create_collection,
    documents,
    error_of,
    job_until_done,
    multipart_raw,
    own_database,
    part,
    query,
    start_rag_host,
    txt,
    upload,
)

from procs import PostgresInstance

COLLECTION = "handbook"
HANDBOOK_PAGES = [
    "Company handbook, part three. This part covers money matters for staff who travel abroad or at home.",
    "Travel expenses must be filed within thirty days of the trip using form TR-7. "
    "Receipts for hotels and trains are scanned and attached to the form.",
    "Annual leave is twenty-five days a year; requests go to your team lead two weeks ahead.",
]
ONBOARDING_MD = """# Onboarding

## Laptop
New employees receive their laptop on the first morning from the IT desk in room 4B.

## Badge
The security office prints the building badge after the photo is taken.
"""
PARKING_TXT = "Parking: the garage under the north building has forty bicycle racks and six charging points."
MAX_FILE_BYTES = 1_500_000
MAX_UPLOAD_BYTES = 3_000_000
MAX_FILES = 40


@pytest.fixture(scope="module")
def host(postgres: PostgresInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("rag-api-home")
    process, url = start_rag_host(
        own_database(postgres, "rag_api"),
        tmp_path_factory.mktemp("rag-api-chroma"),
        home,
        RAG_MAX_FILE_BYTES=str(MAX_FILE_BYTES),
        RAG_MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES),
        RAG_MAX_FILES=str(MAX_FILES),
    )
    yield url
    process.stop()
    # Chroma's default embedding function would have downloaded its model under $HOME/.cache/chroma.
    assert not (home / ".cache" / "chroma").exists()


@pytest.fixture(scope="module")
def indexed(host: str) -> dict[str, Any]:
    create_collection(host, COLLECTION, description="staff handbook")
    files = [
        part("handbook.pdf", pdf_bytes(HANDBOOK_PAGES), "application/pdf"),
        part("guide.docx", docx_bytes(), "application/octet-stream"),
        part("travel.html", HTML.encode(), "text/html"),
        part("onboarding.md", ONBOARDING_MD.encode(), "text/markdown"),
        txt("parking.txt", PARKING_TXT),
    ]
    response = upload(host, COLLECTION, files)
    assert response.status_code == 200, response.text
    return dict(response.json())


def by_name(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {result["filename"]: result for result in results}


def test_one_upload_indexes_every_type_and_lists_chunk_counts(host: str, indexed: dict[str, Any]) -> None:
    results = by_name(indexed["files"])
    assert set(results) == {"handbook.pdf", "guide.docx", "travel.html", "onboarding.md", "parking.txt"}
    assert {r["status"] for r in results.values()} == {"indexed"}
    assert indexed["job"]["status"] == "done" and indexed["job"]["files_done"] == 5
    listed = by_name(documents(host, COLLECTION))
    for name, result in results.items():
        assert listed[name]["status"] == "ready"
        assert listed[name]["chunks"] == result["chunks"] > 0
        assert listed[name]["id"] == result["document_id"]
    assert listed["handbook.pdf"]["pages"] == 3
    assert {d["type"] for d in listed.values()} == {"pdf", "docx", "html", "md", "txt"}
    summary = httpx.get(f"{host}/rag/collections/{COLLECTION}", headers=auth(), timeout=10).json()
    assert summary["documents"] == 5
    assert summary["chunks"] == sum(d["chunks"] for d in listed.values())


def test_the_same_content_again_is_a_duplicate_and_changes_nothing(host: str, indexed: dict[str, Any]) -> None:
    before = documents(host, COLLECTION)
    response = upload(host, COLLECTION, [txt("parking-copy.txt", PARKING_TXT)])
    assert response.status_code == 200, response.text
    (result,) = response.json()["files"]
    assert result["status"] == "duplicate"
    assert result["document_id"] == by_name(indexed["files"])["parking.txt"]["document_id"]
    assert response.json()["job"] is None
    assert documents(host, COLLECTION) == before


def test_a_question_finds_the_right_pdf_page(host: str, indexed: dict[str, Any]) -> None:
    for mode in ("hybrid", "vector", "bm25"):
        hits = query(host, "Within how many days must travel expenses be filed?", [COLLECTION], mode=mode)
        assert hits, mode
        assert (hits[0]["source"], hits[0]["page"]) == ("handbook.pdf", 2), (mode, hits[0])
        assert "thirty days" in hits[0]["text"]
        assert hits[0]["vector_score"] >= 0.3
    hybrid = query(host, "Within how many days must travel expenses be filed?", [COLLECTION])
    assert hybrid[0]["bm25_score"] > 0 and hybrid[0]["score"] > 0


def test_a_markdown_hit_carries_its_section(host: str, indexed: dict[str, Any]) -> None:
    hits = query(host, "Who hands out the laptop on the first day?", [COLLECTION])
    assert hits[0]["source"] == "onboarding.md"
    assert "Laptop" in (hits[0]["section"] or "")
    assert hits[0]["end"] > hits[0]["start"] >= 0


def test_filters_keep_only_the_named_source_or_type(host: str, indexed: dict[str, Any]) -> None:
    question = "travel expenses form for trips"
    for mode in ("hybrid", "vector", "bm25"):
        only_pdf = query(host, question, [COLLECTION], mode=mode, filters={"source": "handbook.pdf"}, min_score=-1)
        assert only_pdf and {h["source"] for h in only_pdf} == {"handbook.pdf"}
        no_pdf = query(host, question, [COLLECTION], mode=mode, filters={"type": ["md", "txt"]}, min_score=-1)
        assert {h["type"] for h in no_pdf} <= {"md", "txt"}
        assert "handbook.pdf" not in {h["source"] for h in no_pdf}


def test_an_irrelevant_question_retrieves_nothing(host: str, indexed: dict[str, Any]) -> None:
    for mode in ("hybrid", "vector", "bm25"):
        assert query(host, "What is the airspeed velocity of an unladen swallow?", [COLLECTION], mode=mode) == []
    # The cut is what removes them: with no floor the same question gets the nearest chunks.
    assert query(host, "What is the airspeed velocity of an unladen swallow?", [COLLECTION], min_score=-1)


def test_unsupported_type_is_415_naming_the_file(host: str, indexed: dict[str, Any]) -> None:
    response = upload(host, COLLECTION, [part("tool.exe", b"MZ\x90\x00binary", "application/octet-stream")])
    assert response.status_code == 415
    assert "tool.exe" in error_of(response)["message"]
    assert response.json()["files"][0]["status"] == "rejected"


def test_a_file_over_the_limit_is_413_naming_the_file(host: str, indexed: dict[str, Any]) -> None:
    response = upload(host, COLLECTION, [txt("huge.txt", "word " * (MAX_FILE_BYTES // 5 + 10))])
    assert response.status_code == 413
    assert error_of(response)["type"] == "file_too_large"
    assert "huge.txt" in error_of(response)["message"]


def test_the_upload_route_takes_bodies_over_the_app_wide_limit_up_to_its_own(
    host: str, indexed: dict[str, Any]
) -> None:
    # 1.2 MB passes the upload route's limit (the app-wide one is 1 MB), so the file itself is judged: 415.
    response = upload(host, COLLECTION, [part("big.bin", b"\x00" * 1_200_000, "application/octet-stream")])
    assert response.status_code == 415, response.text
    over = upload(host, COLLECTION, [part(f"b{i}.bin", b"\x00" * 1_400_000, "application/x-bin") for i in range(3)])
    assert over.status_code == 413
    assert error_of(over)["type"] == "request_too_large"


def test_a_streamed_body_over_the_limit_is_413_too(host: str, indexed: dict[str, Any]) -> None:
    body, content_type = multipart_raw("stream.txt", b"x" * (MAX_UPLOAD_BYTES + 100_000), "text/plain")

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
        for start in range(0, len(body), 256_000):
            yield body[start : start + 256_000]

    response = httpx.post(
        f"{host}/rag/collections/{COLLECTION}/documents",
        content=chunked(),
        headers={**auth(), "Content-Type": content_type},
        timeout=60,
    )
    assert response.status_code == 413
    assert error_of(response)["type"] == "request_too_large"


def test_too_many_files_is_413(host: str, indexed: dict[str, Any]) -> None:
    response = upload(host, COLLECTION, [txt(f"n{i}.txt", f"note {i}") for i in range(MAX_FILES + 1)])
    assert response.status_code == 413
    assert error_of(response)["type"] == "too_many_files"


@pytest.mark.parametrize(
    ("name", "data"),
    [("scan.pdf", image_only_pdf()), ("locked.pdf", encrypted_pdf(["secret text"])), ("empty.txt", b"")],
)
def test_an_unreadable_file_is_422_naming_it(host: str, indexed: dict[str, Any], name: str, data: bytes) -> None:
    response = upload(host, COLLECTION, [part(name, data, "application/octet-stream")])
    assert response.status_code == 422, response.text
    assert error_of(response)["type"] == "unreadable_document"
    assert name in error_of(response)["message"]


def test_a_filename_with_path_parts_is_stored_by_its_base_name(host: str, indexed: dict[str, Any]) -> None:
    body, content_type = multipart_raw("../../secrets/plan.txt", b"The moon base opens in spring 2091.", "text/plain")
    response = httpx.post(
        f"{host}/rag/collections/{COLLECTION}/documents?wait=true",
        content=body,
        headers={**auth(), "Content-Type": content_type},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["files"][0]["filename"] == "plan.txt"
    assert "plan.txt" in {d["filename"] for d in documents(host, COLLECTION)}
    assert query(host, "When does the moon base open?", [COLLECTION])[0]["source"] == "plan.txt"


def test_bad_files_in_a_batch_do_not_stop_the_good_ones(host: str, indexed: dict[str, Any]) -> None:
    files = [
        txt("alpacas.txt", "Alpacas are shorn once a year in late spring; their fleece is softer than sheep wool."),
        part("virus.exe", b"MZ", "application/octet-stream"),
        part("blank.pdf", image_only_pdf(), "application/pdf"),
        part(
            "kites.md", b"# Kites\n\nA delta kite flies best in steady winds of ten to twenty knots.", "text/markdown"
        ),
    ]
    response = upload(host, COLLECTION, files, wait=False)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/rag/jobs/{response.json()['job']['id']}"
    results = by_name(response.json()["files"])
    assert (results["virus.exe"]["status"], results["virus.exe"]["error"]["status"]) == ("rejected", 415)
    assert (results["blank.pdf"]["status"], results["blank.pdf"]["error"]["status"]) == ("rejected", 422)
    assert results["alpacas.txt"]["status"] == "queued"
    final = job_until_done(host, response.json()["job"]["id"])[-1]
    assert final["status"] == "done"
    assert {f["filename"]: f["status"] for f in final["files"]} == {"alpacas.txt": "indexed", "kites.md": "indexed"}
    assert query(host, "How strong should the wind be for a delta kite?", [COLLECTION])[0]["source"] == "kites.md"


def test_a_job_reports_progress_until_done(host: str, indexed: dict[str, Any]) -> None:
    create_collection(host, "essays")
    topics = ["rivers", "glaciers", "deserts", "forests", "islands", "caves", "lakes", "reefs", "canyons", "plains"]
    files = [
        txt(
            f"{topic}.txt",
            " ".join(f"Essay {i} about {topic}, paragraph {p}: {topic} shape the land." for p in range(60)),
        )
        for i, topic in enumerate(topics)
    ]
    response = upload(host, "essays", files, wait=False)
    assert response.status_code == 202, response.text
    states = job_until_done(host, response.json()["job"]["id"])
    final = states[-1]
    assert final["status"] == "done"
    assert final["files_done"] == final["files_total"] == len(topics)
    assert final["chunks_done"] == final["chunks_total"] == sum(d["chunks"] for d in documents(host, "essays"))
    assert final["progress"] == 1.0 and final["finished_at"] is not None
    progress = [state["progress"] for state in states]
    assert progress == sorted(progress)
    assert all(0.0 <= p <= 1.0 for p in progress)


def test_deleting_a_document_removes_it_from_queries(host: str, indexed: dict[str, Any]) -> None:
    create_collection(host, "fleeting")
    response = upload(host, "fleeting", [txt("comet.txt", "Halley's comet returns to the inner solar system in 2061.")])
    document_id = response.json()["files"][0]["document_id"]
    assert query(host, "When does Halley's comet come back?", ["fleeting"])
    deleted = httpx.delete(f"{host}/rag/collections/fleeting/documents/{document_id}", headers=auth(), timeout=30)
    assert deleted.status_code == 204
    for mode in ("hybrid", "vector", "bm25"):
        assert query(host, "When does Halley's comet come back?", ["fleeting"], mode=mode, min_score=-1) == []
    assert documents(host, "fleeting") == []
    twice = httpx.delete(f"{host}/rag/collections/fleeting/documents/{document_id}", headers=auth(), timeout=30)
    assert twice.status_code == 404
    # Deleted content may be uploaded again: the hash belongs to nothing any more.
    fresh = upload(host, "fleeting", [txt("comet.txt", "Halley's comet returns to the inner solar system in 2061.")])
    assert fresh.json()["files"][0]["status"] == "indexed"


def test_reindex_writes_a_new_generation_and_keeps_the_answers(host: str, indexed: dict[str, Any]) -> None:
    pdf = by_name(indexed["files"])["handbook.pdf"]
    response = httpx.post(
        f"{host}/rag/collections/{COLLECTION}/documents/{pdf['document_id']}/reindex", headers=auth(), timeout=30
    )
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/rag/jobs/{response.json()['id']}"
    final = job_until_done(host, response.json()["id"])[-1]
    assert final["status"] == "done" and final["kind"] == "reindex"
    assert final["files"][0]["chunks"] == pdf["chunks"]
    hits = query(host, "Within how many days must travel expenses be filed?", [COLLECTION], top_k=50, min_score=-1)
    pdf_hits = [h for h in hits if h["document_id"] == pdf["document_id"]]
    assert pdf_hits and {h["chunk_id"].split(":")[1] for h in pdf_hits} == {"1"}  # only the new generation
    assert len(pdf_hits) == pdf["chunks"]
    assert (pdf_hits[0]["page"], hits[0]["source"]) == (2, "handbook.pdf")


def test_unknown_names_are_404_and_a_second_collection_of_a_name_is_409(host: str, indexed: dict[str, Any]) -> None:
    def status(method: str, path: str, **kwargs: Any) -> int:
        return httpx.request(method, f"{host}{path}", headers=auth(), timeout=30, **kwargs).status_code

    assert status("GET", "/rag/collections/nope") == 404
    assert status("DELETE", "/rag/collections/nope") == 404
    assert status("GET", "/rag/collections/nope/documents") == 404
    assert upload(host, "nope", [txt("a.txt", "text")]).status_code == 404
    assert status("DELETE", f"/rag/collections/{COLLECTION}/documents/not-a-uuid") == 404
    assert status("POST", f"/rag/collections/{COLLECTION}/documents/{'0' * 8}-0000-0000-0000-{'0' * 12}/reindex") == 404
    assert status("GET", "/rag/jobs/nope") == 404
    assert status("POST", "/rag/query", json={"query": "x", "collections": ["nope"]}) == 404
    assert status("POST", "/rag/collections", json={"name": COLLECTION}) == 409
    assert status("POST", "/rag/collections", json={"name": "Bad Name!"}) == 422
    assert status("POST", "/rag/collections", json={"name": "m", "embedding_model": "no-such-model"}) == 422
    assert status("POST", "/rag/collections", json={"name": "o", "chunk_tokens": 32, "chunk_overlap": 40}) == 422
    assert status("POST", "/rag/query", json={"query": "", "collections": [COLLECTION]}) == 422
    assert httpx.get(f"{host}/rag/collections", timeout=10).status_code == 401


def test_deleting_a_collection_removes_everything_in_it(host: str, indexed: dict[str, Any]) -> None:
    create_collection(host, "doomed")
    upload(host, "doomed", [txt("owl.txt", "Snowy owls hunt lemmings across the Arctic tundra in daylight.")])
    assert query(host, "What do snowy owls hunt?", ["doomed"])
    assert httpx.delete(f"{host}/rag/collections/doomed", headers=auth(), timeout=30).status_code == 204
    assert "doomed" not in {c["name"] for c in httpx.get(f"{host}/rag/collections", headers=auth()).json()}
    create_collection(host, "doomed")  # the same name starts empty
    assert query(host, "What do snowy owls hunt?", ["doomed"], min_score=-1) == []
