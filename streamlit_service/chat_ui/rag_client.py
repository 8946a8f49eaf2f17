"""Calls to the agent host's RAG API (/rag/...); every failure becomes a HostProblem with one readable line."""

from typing import Any

import httpx
import streamlit as st

from chat_ui.config import Settings
from chat_ui.rag_models import Collection, Document, Job, QueryResult, UploadOutcome

# What a person can do about a status, added after the host's own message.
ACTIONS = {
    401: "set AGENT_HOST_API_KEY in streamlit_service/.env to the agent host's key and restart the UI",
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
    """The agent host refused or did not answer; `message` is safe to show (no key in it)."""

    def __init__(self, message: str, status: int | None = None, kind: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


def error_of(response: httpx.Response) -> HostProblem:
    """The host's `{"error": {"type", "message"}}` as a HostProblem, with what to do when that is known."""
    kind, text = "", response.text[:300]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        kind = str(body["error"].get("type", ""))
        text = str(body["error"].get("message", text))
    elif isinstance(body, dict) and "detail" in body:
        text = str(body["detail"])[:300]
    message = f"{text} ({response.status_code})" if text else f"the agent host answered {response.status_code}"
    if response.status_code in ACTIONS:
        message += f": {ACTIONS[response.status_code]}"
    return HostProblem(message, response.status_code, kind)


def mime_type(filename: str) -> str:
    return MIME_TYPES.get(filename.rsplit(".", 1)[-1].lower(), "application/octet-stream")


class RagClient:
    """One HTTP client per agent host; each method is one call of the RAG API."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise HostProblem(f"the agent host at {self.base_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise HostProblem(
                f"cannot reach the agent host at {self.base_url} ({type(exc).__name__}): start it with `make up`"
            ) from None
        if response.status_code not in ok:
            raise error_of(response)
        return response

    def collections(self, timeout: float | None = None) -> list[Collection]:
        """Every collection; `timeout` shorter than the client's for callers that must not hang the page."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        return [Collection.model_validate(item) for item in self._call("GET", "/rag/collections", **extra).json()]

    def create_collection(
        self, name: str, description: str = "", chunk_tokens: int | None = None, chunk_overlap: int | None = None
    ) -> Collection:
        body = {"name": name, "description": description, "chunk_tokens": chunk_tokens, "chunk_overlap": chunk_overlap}
        response = self._call("POST", "/rag/collections", ok=(200, 201), json=body)
        return Collection.model_validate(response.json())

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


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@st.cache_resource(show_spinner=False)
def _shared_client(base_url: str, api_key: str, timeout: float) -> RagClient:
    return RagClient(base_url, api_key, timeout)


def rag_client_of(settings: Settings) -> RagClient:
    """The page's client for the agent host in the settings (one connection pool per host and key)."""
    return _shared_client(settings.agent_host_url, settings.chat_api_key, min(settings.request_timeout, 30.0))
