"""Chunks and their embeddings in Chroma: one Chroma collection per RAG collection, embeddings always given."""

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np

from agent_host.errors import VectorStoreUnavailable

log = logging.getLogger(__name__)
# Embedded Chroma holds the GIL through a whole add (its Rust core, about 3 ms a row): written in slices this
# small, with a pause after each, the host's event loop gets a turn every few tens of milliseconds instead of
# once per 128-row batch (the pause costs ~15% of a large upload's time and halves /health's p99 during it).
WRITE_SLICE = 8
WRITE_PAUSE = 0.005

T = TypeVar("T")
PREFIX = "gl_"
PAGE = 5000


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk as stored: its id ("<document_id>:<generation>:<index>"), text and metadata."""

    id: str
    text: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Neighbour:
    id: str
    text: str
    metadata: dict[str, Any]
    similarity: float


def chroma_name(collection: str) -> str:
    """Chroma names must end in a letter or digit; ours may end in - or _, and never contain a dot."""
    name = PREFIX + collection
    return name if name[-1].isalnum() else f"{name}.c"


def chunk_id(document_id: str, generation: int, index: int) -> str:
    return f"{document_id}:{generation}:{index}"


def chunk_metadata(
    document_id: str,
    generation: int,
    source: str,
    doc_type: str,
    index: int,
    page: int | None,
    section: str | None,
    start: int,
    end: int,
) -> dict[str, Any]:
    """Chroma refuses None in metadata, so a missing page or section is left out."""
    metadata: dict[str, Any] = {
        "document_id": document_id,
        "generation": generation,
        "source": source,
        "type": doc_type,
        "chunk_index": index,
        "start": start,
        "end": end,
    }
    if page is not None:
        metadata["page"] = page
    if section:
        metadata["section"] = section
    return metadata


class VectorStore:
    """Sync Chroma calls (callers run them in a worker thread); any Chroma failure is VectorStoreUnavailable."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        self.path = path
        self.url = url
        self._client: Any = None
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        # Imported here: chromadb is heavy and only the RAG capability needs it.
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        # The default embedding function would download a model: every collection is created without one.
        options = ChromaSettings(anonymized_telemetry=False)
        if self.url:
            parts = urlsplit(self.url)
            ssl = parts.scheme == "https"
            return chromadb.HttpClient(
                host=parts.hostname or "localhost", port=parts.port or (443 if ssl else 8000), ssl=ssl, settings=options
            )
        self.path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self.path), settings=options)

    def _call(self, action: Callable[[], T], collection: str | None = None) -> T:
        """Runs `action`; a cached handle of a collection another replica dropped (or made again) is fetched anew."""
        try:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
            if collection is None or collection not in self._collections:
                return action()
            try:
                return action()
            except Exception as exc:
                if not _not_found(exc):
                    raise
                self._collections.pop(collection, None)
                return action()
        except VectorStoreUnavailable:
            raise
        except Exception as exc:
            where = self.url or str(self.path)
            log.warning("vector store call failed: %s", exc)
            raise VectorStoreUnavailable(f"the vector store at {where} failed: {type(exc).__name__}") from exc

    def _collection(self, name: str, create: bool = False) -> Any:
        cached = self._collections.get(name)
        if cached is not None:
            return cached
        if create:
            collection = self._client.get_or_create_collection(
                chroma_name(name), embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        else:
            collection = self._client.get_collection(chroma_name(name), embedding_function=None)
        self._collections[name] = collection
        return collection

    def ping(self) -> None:
        self._call(lambda: self._client.heartbeat())

    def create(self, name: str, fresh: bool = False) -> None:
        """Creates the Chroma collection; `fresh` first drops one a failed delete may have left behind."""
        if fresh:
            self.drop(name)
        self._call(lambda: self._collection(name, create=True))

    def drop(self, name: str) -> None:
        def drop() -> None:
            self._collections.pop(name, None)
            if chroma_name(name) in {c.name for c in self._client.list_collections()}:
                self._client.delete_collection(chroma_name(name))

        self._call(drop)

    def add(
        self,
        name: str,
        ids: Sequence[str],
        embeddings: np.ndarray,
        texts: Sequence[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        def add() -> None:
            collection = self._collection(name)
            # A Chroma server does the work in its own process: one request per batch, no pauses needed.
            embedded = self.url is None
            step = min(self._client.get_max_batch_size(), WRITE_SLICE if embedded else len(ids) or 1)
            for first in range(0, len(ids), step):
                last = first + step
                collection.add(
                    ids=list(ids[first:last]),
                    embeddings=embeddings[first:last],
                    documents=list(texts[first:last]),
                    metadatas=metadatas[first:last],
                )
                if embedded:
                    time.sleep(WRITE_PAUSE)  # a window in which the event loop, waiting for the GIL, surely gets it

        self._call(add, name)

    def delete_document(self, name: str, document_id: str, generation: int | None = None) -> None:
        """Every chunk of the document, or only those of one generation."""
        where: dict[str, Any] = {"document_id": document_id}
        if generation is not None:
            where = {"$and": [where, {"generation": generation}]}

        try:
            self._call(lambda: self._collection(name).delete(where=where), name)
        except VectorStoreUnavailable as exc:
            if exc.__cause__ is None or not _not_found(exc.__cause__):
                raise
            # the collection is gone, and its chunks with it

    def count(self, name: str) -> int:
        return self._call(lambda: int(self._collection(name).count()), name)

    def nearest(self, name: str, embedding: np.ndarray, n: int, where: dict[str, Any] | None = None) -> list[Neighbour]:
        """The n nearest chunks by cosine similarity (Chroma's cosine distance is 1 - similarity)."""

        def query() -> list[Neighbour]:
            collection = self._collection(name)
            result = collection.query(
                query_embeddings=embedding.reshape(1, -1),
                n_results=n,
                where=where,
                include=["documents", "metadatas", "distances"],
            )
            columns = (result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0])
            return [
                Neighbour(id=i, text=text or "", metadata=dict(meta or {}), similarity=1.0 - float(distance))
                for i, text, meta, distance in zip(*columns, strict=True)
            ]

        return self._call(query, name)

    def fetch(self, name: str, ids: Sequence[str]) -> tuple[list[ChunkRecord], np.ndarray]:
        """These chunks with their stored embeddings (rows in the order of the records)."""

        def get() -> tuple[list[ChunkRecord], np.ndarray]:
            result = self._collection(name).get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
            records = [
                ChunkRecord(id=i, text=text or "", metadata=dict(meta or {}))
                for i, text, meta in zip(result["ids"], result["documents"], result["metadatas"], strict=True)
            ]
            return records, np.asarray(result["embeddings"], dtype=np.float32).reshape(len(records), -1)

        return self._call(get, name)

    def chunks_of(self, name: str, document_ids: Sequence[str]) -> list[ChunkRecord]:
        """Every stored chunk of these documents, whatever their generation."""
        records: list[ChunkRecord] = []
        for first in range(0, len(document_ids), 100):
            where = {"document_id": {"$in": list(document_ids[first : first + 100])}}
            offset = 0
            while True:

                def get(start: int = offset, matching: dict[str, Any] = where) -> Any:
                    return self._collection(name).get(
                        where=matching, include=["documents", "metadatas"], limit=PAGE, offset=start
                    )

                page = _records(self._call(get, name))
                records.extend(page)
                if len(page) < PAGE:
                    break
                offset += len(page)
        return records

    def scan(self, name: str) -> Iterator[list[ChunkRecord]]:
        """Every chunk of the collection, a page at a time (for rebuilding the keyword index)."""
        offset = 0
        while True:

            def get(start: int = offset) -> Any:
                return self._collection(name).get(include=["documents", "metadatas"], limit=PAGE, offset=start)

            records = _records(self._call(get, name))
            if not records:
                return
            yield records
            offset += len(records)


def _records(page: Any) -> list[ChunkRecord]:
    return [
        ChunkRecord(id=i, text=text or "", metadata=dict(meta or {}))
        for i, text, meta in zip(page["ids"], page["documents"], page["metadatas"], strict=True)
    ]


def _not_found(exc: BaseException) -> bool:
    """Chroma's answer for a collection id that no longer exists (embedded and over HTTP)."""
    from chromadb.errors import NotFoundError

    return isinstance(exc, NotFoundError) or "does not exist" in str(exc)
