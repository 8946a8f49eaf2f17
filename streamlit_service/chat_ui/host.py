"""The agent host's HTTP API as the UI uses it: sessions and their messages, documents (RAG), agents.

One client per signed-in person: the bearer is the person's own sign-in token, so the host answers with that
person's sessions and collections only. Every failure is a HostProblem with one line a person can read. Chat
itself goes through the openai SDK (backend.py), pointed at the host's /v1 with the same token.
"""

import json
from collections.abc import Generator, Iterable
from typing import Any

import httpx
import streamlit as st

from chat_ui.host_models import AgentInfo, HostMessage, SessionInfo
from chat_ui.rag_models import Collection, Document, Job, QueryResult, UploadOutcome
from chat_ui.streaming import Feed

# What a person can do about a status, added after the host's own message.
ACTIONS = {
    401: "sign in again (the session ended or was signed out)",
    413: "split the file or raise RAG_MAX_FILE_BYTES on the agent host",
    415: "upload PDF, TXT, Markdown, HTML or DOCX",
    503: "the agent host's document store is not available: see its log (`make logs`)",
}
MIME_TYPES = {
    "pdf": "application/pdf",
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "htm": "text/html",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


class HostProblem(Exception):
    """The agent host refused or did not answer; `message` is safe to show (no credential in it)."""

    def __init__(self, message: str, status: int | None = None, kind: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


def error_of(response: httpx.Response) -> HostProblem:
    """The host's `{"error": {"type", "message"}}` as a HostProblem, with what to do when that is known."""
    kind, text = "", response.text[:300]
    body = _json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        kind = str(body["error"].get("type", ""))
        text = str(body["error"].get("message", text))
    elif isinstance(body, dict) and "detail" in body:
        text = str(body["detail"])[:300]
    message = f"{text} ({response.status_code})" if text else f"the agent host answered {response.status_code}"
    if response.status_code in ACTIONS:
        message += f": {ACTIONS[response.status_code]}"
    return HostProblem(message, response.status_code, kind)


def unreachable(base_url: str, exc: Exception) -> HostProblem:
    if isinstance(exc, httpx.TimeoutException):
        return HostProblem(f"the agent host at {base_url} did not answer in time")
    return HostProblem(f"cannot reach the agent host at {base_url} ({type(exc).__name__}): start it with `make up`")


def mime_type(filename: str) -> str:
    return MIME_TYPES.get(filename.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def sse_events(lines: Iterable[str]) -> Generator[dict[str, Any], None, None]:
    """The JSON objects of an SSE stream's `data:` lines."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data or data == "[DONE]":
            continue
        try:
            event = json.loads(data)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


class HostClient:
    """One connection pool per agent host and person; each method is one call of the host's API."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0, stream_timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._stream_timeout = stream_timeout
        self._http = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.base_url, exc) from None
        if response.status_code not in ok:
            raise error_of(response)
        return response

    def health(self, timeout: float) -> None:
        self._call("GET", "/health", timeout=timeout)

    # Sessions: the one copy of a conversation in agent-host mode.

    def sessions(self, limit: int) -> list[SessionInfo]:
        response = self._call("GET", "/sessions", params={"limit": limit})
        return [SessionInfo.model_validate(item) for item in response.json()]

    def session(self, session_id: str) -> SessionInfo | None:
        """The session, or None when it is not this person's (or gone)."""
        try:
            return SessionInfo.model_validate(self._call("GET", f"/sessions/{session_id}").json())
        except HostProblem as exc:
            if exc.status == 404:
                return None
            raise

    def create_session(self, **fields: Any) -> SessionInfo:
        return SessionInfo.model_validate(self._call("POST", "/sessions", ok=(201,), json=fields).json())

    def update_session(self, session_id: str, **fields: Any) -> None:
        self._call("PATCH", f"/sessions/{session_id}", json=fields)

    def delete_session(self, session_id: str) -> None:
        self._call("DELETE", f"/sessions/{session_id}", ok=(200, 204, 404))

    def messages(self, session_id: str) -> list[HostMessage]:
        response = self._call("GET", f"/sessions/{session_id}/messages")
        return [HostMessage.model_validate(item) for item in response.json()]

    def replace_message(self, session_id: str, message_id: int, content: str) -> None:
        self._call("PATCH", f"/sessions/{session_id}/messages/{message_id}", json={"content": content})

    def delete_message(self, session_id: str, message_id: int) -> None:
        self._call("DELETE", f"/sessions/{session_id}/messages/{message_id}", ok=(200, 204))

    def truncate_after(self, session_id: str, message_id: int) -> None:
        self._call("DELETE", f"/sessions/{session_id}/messages", ok=(200, 204), params={"after": message_id})

    # Documents (RAG).

    def collections(self, timeout: float | None = None) -> list[Collection]:
        """The person's collections and the shared ones; `timeout` for callers that must not hang the page."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        return [Collection.model_validate(item) for item in self._call("GET", "/rag/collections", **extra).json()]

    def create_collection(
        self, name: str, description: str = "", chunk_tokens: int | None = None, chunk_overlap: int | None = None
    ) -> Collection:
        body = {"name": name, "description": description, "chunk_tokens": chunk_tokens, "chunk_overlap": chunk_overlap}
        return Collection.model_validate(self._call("POST", "/rag/collections", ok=(200, 201), json=body).json())

    def share_collection(self, name: str, shared: bool) -> None:
        self._call("PATCH", f"/rag/collections/{name}", json={"shared": shared})

    def delete_collection(self, name: str) -> None:
        self._call("DELETE", f"/rag/collections/{name}", ok=(200, 204))

    def documents(self, collection: str) -> list[Document]:
        response = self._call("GET", f"/rag/collections/{collection}/documents")
        return [Document.model_validate(item) for item in response.json()]

    def upload(self, collection: str, files: list[tuple[str, bytes]], timeout: float = 120.0) -> UploadOutcome:
        """Sends every file in one request; a batch the host refused entirely comes back with `error` set."""
        parts = [("files", (name, data, mime_type(name))) for name, data in files]
        try:
            response = self._http.post(f"/rag/collections/{collection}/documents", files=parts, timeout=timeout)
        except httpx.HTTPError as exc:
            raise HostProblem(f"the upload to {self.base_url} failed ({type(exc).__name__})") from None
        if response.status_code in (200, 201, 202):
            return UploadOutcome.model_validate(response.json())
        body = _json_or_none(response)
        if isinstance(body, dict) and isinstance(body.get("files"), list) and body["files"]:
            return UploadOutcome.model_validate({"job": None, **body})  # every file refused, each with its reason
        raise error_of(response)

    def job(self, job_id: str) -> Job:
        return Job.model_validate(self._call("GET", f"/rag/jobs/{job_id}").json())

    def delete_document(self, collection: str, document_id: str) -> None:
        self._call("DELETE", f"/rag/collections/{collection}/documents/{document_id}", ok=(200, 204))

    def reindex_document(self, collection: str, document_id: str) -> Job | None:
        """Starts re-indexing; the job to follow when the host runs it in the background."""
        path = f"/rag/collections/{collection}/documents/{document_id}/reindex"
        body = _json_or_none(self._call("POST", path, ok=(200, 201, 202)))
        if isinstance(body, dict) and isinstance(body.get("job"), dict):
            body = body["job"]
        if isinstance(body, dict) and "progress" in body:
            return Job.model_validate(body)
        return None

    def query(self, query: str, collections: list[str], top_k: int = 5, mode: str = "hybrid") -> QueryResult:
        body = {"query": query, "collections": collections, "top_k": top_k, "mode": mode}
        return QueryResult.model_validate(self._call("POST", "/rag/query", json=body).json())

    # Agents.

    def agents(self, timeout: float | None = None) -> list[AgentInfo]:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        body = self._call("GET", "/agents", **extra).json()
        items = body.get("agents", []) if isinstance(body, dict) else body
        return [AgentInfo.model_validate(item) for item in items]

    def run_agent(self, body: dict[str, Any], feed: Feed) -> None:
        """`POST /agents/run` streamed: puts each event in `feed` (for streaming.relay) until the run ends."""
        timeout = httpx.Timeout(self._stream_timeout, connect=10.0)
        try:
            with self._http.stream(
                "POST", "/agents/run", json=body, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as response:
                feed.closing(response.close)
                if response.status_code != 200:
                    response.read()
                    feed.put(error_of(response))
                    return
                for event in sse_events(response.iter_lines()):
                    if feed.cancelled.is_set():
                        break
                    feed.put(event)
        except httpx.HTTPError as exc:
            if not feed.cancelled.is_set():
                feed.put(unreachable(self.base_url, exc))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@st.cache_resource(show_spinner=False, max_entries=256)
def _shared_client(base_url: str, token: str, timeout: float, stream_timeout: float) -> HostClient:
    return HostClient(base_url, token, timeout, stream_timeout)


def host_client(base_url: str, token: str, request_timeout: float) -> HostClient:
    """The person's client for the agent host (one connection pool per host and sign-in)."""
    return _shared_client(base_url, token, min(request_timeout, 30.0), request_timeout)
