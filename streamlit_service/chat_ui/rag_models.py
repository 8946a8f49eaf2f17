"""The agent host's RAG wire models as the UI reads them (from agent_host/rag/schemas.py; the UI has its own copy)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

UPLOAD_TYPES = ["pdf", "txt", "md", "html", "docx"]
SEARCH_MODES = ["hybrid", "vector", "bm25"]


class WireModel(BaseModel):
    # Fields the host adds later are ignored, not a crash of the page.
    model_config = ConfigDict(extra="ignore")


class Collection(WireModel):
    name: str
    description: str = ""
    chunk_tokens: int
    chunk_overlap: int
    embedding_model: str
    documents: int
    chunks: int
    created_at: datetime
    # Whose it is, whether everyone may read it, and whether the person asking may change it (owner or admin).
    owner_id: str | None = None
    owner_login: str | None = None
    shared: bool = False
    writable: bool = True


class Document(WireModel):
    id: str
    collection: str
    filename: str
    type: str
    size: int
    pages: int | None = None
    chunks: int
    status: str
    created_at: datetime


class FileProblem(WireModel):
    type: str
    message: str
    status: int


class ErrorDetail(WireModel):
    type: str
    message: str


class FileResult(WireModel):
    filename: str
    status: str  # queued, indexed, duplicate, rejected, failed
    document_id: str | None = None
    chunks: int | None = None
    error: FileProblem | None = None


class Job(WireModel):
    id: str
    collection: str
    kind: str
    status: str  # queued, running, done, failed
    files_total: int
    files_done: int
    chunks_total: int
    chunks_done: int
    progress: float
    files: list[FileResult]
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


class UploadOutcome(WireModel):
    """The host's answer to an upload: a job for the accepted files, and what happened to each file."""

    job: Job | None = None
    files: list[FileResult]
    error: ErrorDetail | None = None  # set when every file was refused


class Hit(WireModel):
    rank: int
    chunk_id: str
    document_id: str
    collection: str
    source: str
    type: str
    page: int | None = None
    section: str | None = None
    text: str
    score: float
    vector_score: float | None = None
    bm25_score: float | None = None


class QueryResult(WireModel):
    query: str
    mode: str
    hits: list[Hit]
    took_ms: float


class Citation(WireModel):
    """`[index]` in an answer and the chunk it stands for."""

    index: int
    source: str
    page: int | None = None
    section: str | None = None
    document_id: str = ""
    collection: str = ""
    chunk_id: str = ""
    score: float = 0.0
    text: str = ""

    def label(self) -> str:
        where = [f"[{self.index}] {self.source}"]
        if self.page is not None:
            where.append(f"page {self.page}")
        if self.section:
            where.append(self.section)
        return " · ".join(where)
