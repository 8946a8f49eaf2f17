"""Wire models of the RAG API: collections, documents, ingestion jobs, queries and citations."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

COLLECTION_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
DocumentType = Literal["pdf", "txt", "md", "html", "docx"]
SearchMode = Literal["hybrid", "vector", "bm25"]


class CollectionCreate(BaseModel):
    name: str = Field(pattern=COLLECTION_NAME)
    description: str = Field(default="", max_length=2000)
    # None: the host's defaults (RAG_CHUNK_TOKENS, RAG_CHUNK_OVERLAP, EMBEDDING_MODEL).
    chunk_tokens: int | None = Field(default=None, ge=16, le=512)
    chunk_overlap: int | None = Field(default=None, ge=0, le=256)
    embedding_model: str | None = None


class CollectionUpdate(BaseModel):
    """`PATCH /rag/collections/{name}` (its owner or an administrator): share it with everyone, read-only, or not."""

    model_config = ConfigDict(extra="forbid")

    shared: bool


class CollectionPublic(BaseModel):
    name: str
    description: str
    chunk_tokens: int
    chunk_overlap: int
    embedding_model: str
    documents: int
    chunks: int
    created_at: datetime
    # Whose it is (None: made before accounts and not adopted yet), and whether everyone may read it.
    owner_id: str | None = None
    owner_login: str | None = None
    shared: bool = False
    # Whether the person asking may change it (upload, delete, share): its owner or an administrator.
    writable: bool = False
    # Moves whenever its set of ready documents changes: replicas compare it with their keyword index's.
    version: int = Field(default=0, exclude=True)


class DocumentPublic(BaseModel):
    id: str
    collection: str
    filename: str
    type: DocumentType
    size: int
    sha256: str
    pages: int | None
    chunks: int
    status: Literal["indexing", "ready"]
    created_at: datetime


class FileProblem(BaseModel):
    type: str
    message: str
    status: int


class FileResult(BaseModel):
    """What happened to one uploaded file."""

    filename: str
    status: Literal["queued", "indexed", "duplicate", "rejected", "failed"]
    document_id: str | None = None
    chunks: int | None = None
    error: FileProblem | None = None


class JobPublic(BaseModel):
    id: str
    collection: str
    kind: Literal["ingest", "reindex"]
    status: Literal["queued", "running", "done", "failed"]
    files_total: int
    files_done: int
    chunks_total: int
    chunks_done: int
    progress: float = Field(ge=0.0, le=1.0)
    files: list[FileResult]
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class UploadResult(BaseModel):
    job: JobPublic | None
    files: list[FileResult]


class RagFilters(BaseModel):
    source: str | list[str] | None = None
    type: DocumentType | list[DocumentType] | None = None


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=8000)
    collections: list[str] = Field(min_length=1)
    top_k: int = Field(default=5, ge=1, le=50)
    mode: SearchMode = "hybrid"
    filters: RagFilters | None = None
    # None: the host's RAG_MIN_SCORE.
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)


class Hit(BaseModel):
    rank: int
    chunk_id: str
    document_id: str
    collection: str
    source: str
    type: DocumentType
    page: int | None
    section: str | None
    start: int
    end: int
    text: str
    score: float
    vector_score: float | None
    bm25_score: float | None


class QueryResult(BaseModel):
    query: str
    mode: SearchMode
    hits: list[Hit]
    took_ms: float


class Citation(BaseModel):
    """`[index]` in an answer, mapped to where the text came from."""

    index: int
    source: str
    page: int | None
    section: str | None
    document_id: str
    collection: str
    chunk_id: str
    score: float
    text: str


class RagOptions(BaseModel):
    """`rag` on a chat request: retrieve from these collections before answering."""

    collections: list[str] = Field(min_length=1)
    top_k: int | None = Field(default=None, ge=1, le=20)
    mode: SearchMode = "hybrid"
    filters: RagFilters | None = None
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0)
