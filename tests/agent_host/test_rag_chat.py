"""RAG in chat, end to end: real host, real Chroma and embedding model, the real proxy and smollm2."""

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from host_support import MODEL, auth, chat_body, new_session, shared_master_key, sse_data, start_host
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from procs import ManagedProcess, PostgresInstance

COLLECTION = "handbook"
EXPENSES_PAGES = [
    "Company handbook, part three. This part covers money matters for staff who travel.",
    "Travel expenses must be filed within thirty days of the trip using form TR-7. "
    "Receipts for hotels and trains are scanned and attached to the form.",
]
ONBOARDING_MD = """# Onboarding

## Laptop
New employees receive their laptop on the first morning from the IT desk in room 4B.

## Badge
The security office prints the building badge after the photo is taken.
"""
PARKING_TXT = "Parking: the garage under the north building has forty bicycle racks and six charging points."


def pdf_bytes(pages: list[str]) -> bytes:
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pagesize=A4)
    for text in pages:
        line = document.beginText(40, 800)
        for start in range(0, len(text), 80):
            line.textLine(text[start : start + 80])
        document.drawText(line)
        document.showPage()
    document.save()
    return buffer.getvalue()


@pytest.fixture(scope="module")
def rag_host(proxy: str, postgres: PostgresInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = tmp_path_factory.mktemp("chroma-chat")
    process: ManagedProcess
    process, url = start_host(
        proxy,
        postgres.url("genailabs"),
        shared_master_key(),
        CHROMA_PATH=str(chroma),
        CONTEXT_WINDOWS=json.dumps({MODEL: 2048}),
    )
    files = [
        ("files", ("expenses.pdf", pdf_bytes(EXPENSES_PAGES), "application/pdf")),
        ("files", ("onboarding.md", ONBOARDING_MD.encode(), "text/markdown")),
        ("files", ("parking.txt", PARKING_TXT.encode(), "text/plain")),
    ]
    httpx.delete(f"{url}/rag/collections/{COLLECTION}", headers=auth(), timeout=30)
    created = httpx.post(f"{url}/rag/collections", json={"name": COLLECTION}, headers=auth(), timeout=30)
    assert created.status_code == 201, created.text
    uploaded = httpx.post(
        f"{url}/rag/collections/{COLLECTION}/documents",
        params={"wait": "true"},
        files=files,
        headers=auth(),
        timeout=300,
    )
    assert uploaded.status_code == 200, uploaded.text
    assert {f["status"] for f in uploaded.json()["files"]} == {"indexed"}
    yield url
    process.stop()


def ask(url: str, question: str, **extra: Any) -> httpx.Response:
    body = chat_body(question, max_tokens=24, temperature=0, **extra)
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth(), timeout=120)


def test_chat_with_rag_cites_the_file_and_page_that_hold_the_answer(rag_host: str) -> None:
    response = ask(rag_host, "Which form do I use to file my travel expenses?", rag={"collections": [COLLECTION]})
    assert response.status_code == 200, response.text
    body = response.json()
    first = body["citations"][0]
    assert (first["index"], first["source"], first["page"]) == (1, "expenses.pdf", 2)
    assert "TR-7" in first["text"]
    assert body["context"]["sources"] == len(body["citations"]) == int(response.headers["x-context-sources"])
    assert body["choices"][0]["message"]["content"]  # the model answered (wording is the model's)
    assert body["usage"]["prompt_tokens"] > 60  # the sources went into the prompt


def test_markdown_citation_names_its_section(rag_host: str) -> None:
    response = ask(rag_host, "Where do new employees pick up their laptop?", rag={"collections": [COLLECTION]})
    first = response.json()["citations"][0]
    assert first["source"] == "onboarding.md"
    assert "Laptop" in (first["section"] or "")


def test_stream_carries_citations_on_its_first_chunk(rag_host: str) -> None:
    body = chat_body("How many bicycle racks are in the garage?", max_tokens=16, stream=True)
    body["rag"] = {"collections": [COLLECTION], "top_k": 2}
    with httpx.stream("POST", f"{rag_host}/v1/chat/completions", json=body, headers=auth(), timeout=120) as response:
        assert response.status_code == 200
        events = sse_data(list(response.iter_lines()))
    assert events[0]["citations"][0]["source"] == "parking.txt"
    assert all("citations" not in event for event in events[1:])
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))


def test_irrelevant_question_says_nothing_was_found_instead_of_guessing(rag_host: str) -> None:
    response = ask(rag_host, "What is the orbital period of Neptune's moon Triton?", rag={"collections": [COLLECTION]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["citations"] == []
    assert "could not find anything relevant" in body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] == 0  # the model was not asked


def test_session_bound_to_a_collection_retrieves_without_rag_in_the_request(rag_host: str) -> None:
    session = new_session(rag_host, collections=[COLLECTION])
    response = ask(rag_host, "Who prints the building badge?", session_id=session)
    assert response.status_code == 200, response.text
    assert response.json()["citations"][0]["source"] == "onboarding.md"
    stored = httpx.get(f"{rag_host}/sessions/{session}", headers=auth(), timeout=10).json()
    assert stored["collections"] == [COLLECTION]


def test_chat_with_an_unknown_collection_is_404_and_stores_nothing(rag_host: str) -> None:
    session = new_session(rag_host)
    response = ask(rag_host, "Anything?", rag={"collections": ["no-such-collection"]}, session_id=session)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "collection_not_found"
    messages = httpx.get(f"{rag_host}/sessions/{session}/messages", headers=auth(), timeout=10).json()
    assert messages == []


def test_websocket_sends_citations_before_tokens(rag_host: str) -> None:
    from websockets.sync.client import connect

    ws_url = rag_host.replace("http://", "ws://") + "/ws/chat?api_key=" + auth()["Authorization"].split()[1]
    with connect(ws_url) as ws:
        message = {"type": "chat", **chat_body("Which form is used for travel expenses?", max_tokens=12)}
        message["rag"] = {"collections": [COLLECTION]}
        ws.send(json.dumps(message))
        kinds: list[str] = []
        citations: list[dict[str, Any]] = []
        while True:
            event = json.loads(ws.recv(timeout=120))
            kinds.append(event["type"])
            if event["type"] == "citations":
                citations = event["citations"]
            if event["type"] in ("done", "error"):
                break
    assert kinds[:2] == ["context", "citations"]
    assert kinds[-1] == "done"
    assert citations[0]["source"] == "expenses.pdf"


def test_sources_that_cannot_fit_beside_the_reply_are_explained_not_guessed(rag_host: str) -> None:
    question = "Which form do I use to file my travel expenses?"
    body = chat_body(question, max_tokens=1960, temperature=0, rag={"collections": [COLLECTION]})
    response = httpx.post(f"{rag_host}/v1/chat/completions", json=body, headers=auth(), timeout=120)
    assert response.status_code == 200, response.text
    answer = response.json()
    context = answer["context"]
    assert context["prompt_tokens"] + context["reply_tokens"] <= context["window"]
    assert answer["citations"] == []
    assert "none fits" in context["warning"]
    assert "relevant passages" in answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] == 0
