"""The pieces behind the Documents page, the sources and agent mode that need no running service."""

from typing import Any

import httpx
import openai

from chat_ui.agent_turn import AgentReply
from chat_ui.agent_view import blocks_of, run_summary
from chat_ui.documents_view import merge_results, progress_text
from chat_ui.errors import explain
from chat_ui.host import error_of, sse_events
from chat_ui.knowledge import explain_rag
from chat_ui.rag_models import Citation, FileResult, Job


def job(**fields: Any) -> Job:
    base = {
        "id": "j",
        "collection": "c",
        "kind": "ingest",
        "status": "running",
        "files_total": 3,
        "files_done": 1,
        "chunks_total": 40,
        "chunks_done": 10,
        "progress": 0.25,
        "files": [],
    }
    return Job.model_validate({**base, **fields})


def test_a_citation_reads_as_its_number_file_and_page() -> None:
    citation = Citation(index=1, source="file.pdf", page=3, section=None, text="x", score=0.5)
    assert citation.label() == "[1] file.pdf · page 3"
    assert Citation(index=2, source="notes.md", section="Diet").label() == "[2] notes.md · Diet"


def test_the_report_takes_the_jobs_final_word_and_keeps_files_refused_at_upload() -> None:
    sent = [
        FileResult(filename="a.txt", status="queued"),
        FileResult(filename="b.txt", status="duplicate"),
        FileResult(filename="c.exe", status="rejected"),
    ]
    finished = [FileResult(filename="a.txt", status="indexed", chunks=4)]
    merged = merge_results(sent, finished)
    assert [(r.filename, r.status) for r in merged] == [
        ("a.txt", "indexed"),
        ("b.txt", "duplicate"),
        ("c.exe", "rejected"),
    ]


def test_progress_text_counts_files_and_chunks() -> None:
    assert progress_text(job()) == "Indexing: 1/3 files · 10/40 chunks"
    assert progress_text(job(chunks_total=0, chunks_done=0)) == "Indexing: 1/3 files"


def test_host_errors_keep_the_hosts_message_and_say_what_to_do() -> None:
    body = {"error": {"type": "unsupported_media_type", "message": "x.exe: type .exe is not supported"}}
    problem = error_of(httpx.Response(415, json=body))
    assert problem.status == 415 and problem.kind == "unsupported_media_type"
    assert problem.message.startswith("x.exe: type .exe is not supported (415): upload PDF")
    assert "not JSON" in error_of(httpx.Response(502, text="not JSON")).message


def test_a_document_error_in_chat_is_not_blamed_on_the_model() -> None:
    request = httpx.Request("POST", "http://host/v1/chat/completions")
    body = {"type": "collection_not_found", "message": "collection 'zoo' does not exist"}
    exc = openai.NotFoundError("nope", response=httpx.Response(404, request=request), body=body)
    problem = explain_rag(exc)
    assert problem is not None and problem.kind == "collection_not_found"
    assert "collection 'zoo' does not exist (404)" in problem.message
    model_missing = openai.NotFoundError(
        "nope", response=httpx.Response(404, request=request), body={"type": "model_not_found", "message": "m"}
    )
    assert explain_rag(model_missing) is None


def test_sse_lines_become_events_and_noise_is_skipped() -> None:
    lines = ["event: step", 'data: {"type": "start", "agent": "a"}', "", "data: not json", "data: [DONE]"]
    assert list(sse_events(iter(lines))) == [{"type": "start", "agent": "a"}]


def test_agent_events_group_into_steps_in_reading_order() -> None:
    events = [
        {"type": "start", "run_id": "r", "agent": "helper", "model": "m", "tools": ["calculator"], "route": {}},
        {"type": "delta", "step": 1, "text": "Let me"},
        {"type": "tool_call", "step": 1, "id": "1", "name": "calculator", "arguments": {"expression": "2+2"}},
        {"type": "tool_result", "step": 1, "id": "1", "name": "calculator", "content": "4", "is_error": False,
         "latency_ms": 1.0},
        {"type": "tool_call", "step": 2, "id": "2", "name": "clock", "arguments": {}},
        {"type": "tool_result", "step": 2, "id": "2", "name": "clock", "content": "boom", "is_error": True,
         "latency_ms": 1.0},
        {"type": "answer", "content": "4", "steps": 3, "tool_calls": 2, "stopped_by": "max_steps"},
    ]  # fmt: skip
    reply = AgentReply()
    for event in events:
        reply.absorb(event)
    assert reply.agent == "helper" and reply.text == "4"
    assert all(event["type"] != "delta" for event in reply.events), "deltas are folded, not stored"
    blocks = blocks_of(reply.events)
    assert blocks[0]["type"] == "start"
    labels = [block.label() for block in blocks[1:]]  # type: ignore[union-attr]
    assert labels == ["Step 1: calculator", "Step 2: clock (error)"]
    assert run_summary(reply.events) == "3 steps · 2 tool calls · stopped by the step limit"


def test_an_error_event_ends_the_run_with_the_hosts_message() -> None:
    reply = AgentReply()
    reply.absorb({"type": "error", "error": {"type": "proxy_unavailable", "message": "proxy down"}})
    assert reply.error is not None and str(reply.error) == "proxy down"


def test_a_401_from_the_agent_host_asks_to_sign_in_again_and_never_shows_the_token() -> None:
    request = httpx.Request("POST", "http://host/v1/chat/completions")
    body = {"error": {"type": "not_signed_in", "message": "session gls_secret-token expired"}}
    exc = openai.AuthenticationError("401", response=httpx.Response(401, request=request), body=body)
    problem = explain(exc, "m", "http://host/v1", "gls_secret-token", host=True)
    assert problem.kind == "auth" and "Sign in again" in problem.action
    assert "gls_secret-token" not in problem.message and "***" in problem.message
    assert "LITELLM_API_KEY" in explain(exc, "m", "http://proxy/v1", "sk-key").action  # the proxy's wording
