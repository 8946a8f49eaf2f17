"""Hybrid retrieval in one collection: vector (Chroma) and BM25 candidates, fused by reciprocal rank, cut by cosine."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent_host.rag.bm25 import KeywordCorpus, KeywordIndex
from agent_host.rag.schemas import SearchMode
from agent_host.rag.store import VectorStore

log = logging.getLogger(__name__)


class Visibility:
    """The (document id, generation) pairs queries may return, per collection: only fully indexed ones."""

    def __init__(self) -> None:
        self._ready: dict[str, frozenset[tuple[str, int]]] = {}
        self._version = 0

    def load(self, pairs: list[tuple[str, str, int]]) -> None:
        ready: dict[str, set[tuple[str, int]]] = {}
        for collection, document_id, generation in pairs:
            ready.setdefault(collection, set()).add((document_id, generation))
        self._ready = {name: frozenset(members) for name, members in ready.items()}
        self._version += 1

    def show(self, collection: str, document_id: str, generation: int, replaces: int | None = None) -> None:
        """Readers hold the old frozenset or the new one, never a half-updated set."""
        members = set(self._ready.get(collection, frozenset()))
        members.add((document_id, generation))
        if replaces is not None:
            members.discard((document_id, replaces))
        self._ready[collection] = frozenset(members)
        self._version += 1

    def hide(self, collection: str, document_id: str) -> None:
        members = self._ready.get(collection, frozenset())
        self._ready[collection] = frozenset(pair for pair in members if pair[0] != document_id)
        self._version += 1

    def drop(self, collection: str) -> None:
        self._ready.pop(collection, None)
        self._version += 1

    def ready(self, collection: str) -> tuple[frozenset[tuple[str, int]], int]:
        return self._ready.get(collection, frozenset()), self._version


class KeywordIndexes:
    """One BM25 corpus per collection, loaded from Chroma on first use and rebuilt after every change."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self._corpora: dict[str, KeywordCorpus] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def corpus(self, collection: str) -> KeywordCorpus:
        """The collection's corpus, scanning Chroma the first time (later callers wait for that one scan)."""
        corpus = self._corpora.get(collection)
        if corpus is not None:
            return corpus
        lock = self._locks.setdefault(collection, asyncio.Lock())
        async with lock:
            corpus = self._corpora.get(collection)
            if corpus is None:
                corpus = await asyncio.to_thread(self._load, collection)
                self._corpora[collection] = corpus
        return corpus

    def _load(self, collection: str) -> KeywordCorpus:
        corpus = KeywordCorpus()
        for page in self.store.scan(collection):
            corpus.add((record.id, record.text, record.metadata) for record in page)
        corpus.build()
        log.info("BM25 index of %r built: %d chunks", collection, len(corpus))
        return corpus

    async def rebuild(self, collection: str, change: Callable[[KeywordCorpus], None]) -> None:
        """Applies a change (add/remove chunks) and publishes the rebuilt index, all in a worker thread."""
        corpus = await self.corpus(collection)

        def apply() -> None:
            change(corpus)
            corpus.build()

        await asyncio.to_thread(apply)

    def drop(self, collection: str) -> None:
        self._corpora.pop(collection, None)


@dataclass
class Candidate:
    chunk_id: str
    collection: str
    text: str | None = None
    metadata: dict[str, Any] | None = None
    vector_score: float | None = None
    vector_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None
    score: float = 0.0


@dataclass(frozen=True)
class SearchParams:
    mode: SearchMode
    pool: int
    min_score: float
    sources: list[str] | None
    types: list[str] | None
    vector_weight: float
    bm25_weight: float
    rrf_k: int


def chroma_filter(sources: list[str] | None, types: list[str] | None) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if sources is not None:
        clauses.append({"source": {"$in": sources}})
    if types is not None:
        clauses.append({"type": {"$in": types}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def is_visible(metadata: dict[str, Any], ready: frozenset[tuple[str, int]]) -> bool:
    return (str(metadata.get("document_id")), int(metadata.get("generation", -1))) in ready


def search_collection(
    store: VectorStore,
    collection: str,
    query: str,
    embedding: np.ndarray,
    keywords: KeywordIndex | None,
    ready: tuple[frozenset[tuple[str, int]], int],
    params: SearchParams,
) -> list[Candidate]:
    """Candidates of one collection, scored and cut (sync: Chroma and numpy work, run it in a worker thread)."""
    visible, version = ready
    if not visible:
        return []
    found: dict[str, Candidate] = {}
    if params.mode in ("vector", "hybrid"):
        for rank, neighbour in enumerate(_nearest_visible(store, collection, embedding, visible, params), start=1):
            found[neighbour.id] = Candidate(
                neighbour.id, collection, neighbour.text, neighbour.metadata, neighbour.similarity, rank
            )
    scores: np.ndarray | None = None
    if params.mode in ("bm25", "hybrid") and keywords is not None and len(keywords):
        weights = keywords.visible(visible, version)
        matching = keywords.matching(params.sources, params.types)
        if matching is not None:
            weights = weights * matching
        scores = keywords.scores(query, weights)
        if scores is not None:
            for rank, hit in enumerate(keywords.top(scores, params.pool), start=1):
                candidate = found.setdefault(hit.chunk_id, Candidate(hit.chunk_id, collection))
                candidate.bm25_score, candidate.bm25_rank = hit.score, rank
    if scores is not None and keywords is not None:
        for candidate in found.values():
            position = keywords.position(candidate.chunk_id)
            if candidate.bm25_score is None and position is not None:
                candidate.bm25_score = float(scores[position])
    _fill_from_store(store, collection, embedding, [c for c in found.values() if c.text is None])
    kept = [c for c in found.values() if c.metadata is not None and (c.vector_score or 0.0) >= params.min_score]
    for candidate in kept:
        candidate.score = _score(candidate, params)
    kept.sort(key=lambda c: (c.score, c.vector_score or 0.0), reverse=True)
    return kept


def _nearest_visible(
    store: VectorStore,
    collection: str,
    embedding: np.ndarray,
    visible: frozenset[tuple[str, int]],
    params: SearchParams,
) -> list[Any]:
    """Nearest chunks of ready documents; asks again for more if chunks being indexed crowded the pool out."""
    where = chroma_filter(params.sources, params.types)
    wanted = params.pool
    for _ in range(3):
        neighbours = store.nearest(collection, embedding, wanted, where)
        shown = [n for n in neighbours if is_visible(n.metadata, visible)]
        if len(shown) >= params.pool or len(neighbours) < wanted:
            return shown[: params.pool]
        wanted *= 4
    return shown[: params.pool]


def _fill_from_store(store: VectorStore, collection: str, embedding: np.ndarray, missing: list[Candidate]) -> None:
    """BM25-only candidates get their text, metadata and cosine similarity from their stored embedding."""
    if not missing:
        return
    records, vectors = store.fetch(collection, [c.chunk_id for c in missing])
    similarity = vectors @ embedding.astype(np.float32) if len(records) else np.zeros(0, dtype=np.float32)
    by_id = {record.id: (record, float(sim)) for record, sim in zip(records, similarity, strict=True)}
    for candidate in missing:
        if candidate.chunk_id in by_id:
            record, sim = by_id[candidate.chunk_id]
            candidate.text, candidate.metadata, candidate.vector_score = record.text, record.metadata, sim


def _score(candidate: Candidate, params: SearchParams) -> float:
    if params.mode == "vector":
        return candidate.vector_score or 0.0
    if params.mode == "bm25":
        return candidate.bm25_score or 0.0
    fused = 0.0
    if candidate.vector_rank is not None:
        fused += params.vector_weight / (params.rrf_k + candidate.vector_rank)
    if candidate.bm25_rank is not None:
        fused += params.bm25_weight / (params.rrf_k + candidate.bm25_rank)
    return fused
