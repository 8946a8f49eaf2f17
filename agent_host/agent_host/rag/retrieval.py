"""Hybrid retrieval in one collection: vector (Chroma) and BM25 candidates, fused by reciprocal rank, cut by cosine."""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent_host.rag.bm25 import KeywordCorpus, KeywordIndex
from agent_host.rag.registry import Registry
from agent_host.rag.schemas import SearchMode
from agent_host.rag.store import VectorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """What this replica serves of one collection: the ready pairs at a version, and BM25 over exactly them."""

    version: int
    ready: frozenset[tuple[str, int]]
    corpus: KeywordCorpus | None  # None until a keyword search needs it

    @property
    def keywords(self) -> KeywordIndex | None:
        return None if self.corpus is None else self.corpus.index


class SharedView:
    """Per collection, the (document id, generation) pairs queries may return and their BM25 index.

    Ready documents are PostgreSQL's to say, so every replica agrees: each collection carries a version that
    moves with every finalise, re-index and delete, and a replica that served another version reads the ready
    set again and loads (or drops) only the chunks of the documents that changed before it answers.
    """

    def __init__(self, registry: Registry, store: VectorStore) -> None:
        self.registry = registry
        self.store = store
        self._served: dict[str, Served] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def current(self, collection: str, version: int, keywords: bool) -> Served:
        """The collection as of `version` (the one its row showed this request) or later."""
        served = self._served.get(collection)
        if served is not None and served.version >= version and (served.corpus is not None or not keywords):
            return served
        lock = self._locks.setdefault(collection, asyncio.Lock())
        async with lock:  # concurrent queries wait for one refresh instead of each doing it
            served = self._served.get(collection)
            if served is not None and served.version >= version and (served.corpus is not None or not keywords):
                return served
            latest, ready = await self.registry.ready_state(collection)
            corpus = served.corpus if served is not None else None
            if corpus is not None and served is not None:
                if ready != served.ready:
                    await asyncio.to_thread(self._apply, collection, corpus, ready - served.ready, served.ready - ready)
            elif keywords:
                corpus = await asyncio.to_thread(self._load, collection, ready)
            served = Served(latest, ready, corpus)
            self._served[collection] = served
            return served

    def _load(self, collection: str, ready: frozenset[tuple[str, int]]) -> KeywordCorpus:
        """BM25 over the ready chunks: a ready document's chunks are all written and stay until it is deleted."""
        corpus = KeywordCorpus()
        for page in self.store.scan(collection):
            corpus.add((r.id, r.text, r.metadata) for r in page if _pair(r.metadata) in ready)
        corpus.build()
        log.info("BM25 index of %r built: %d chunks", collection, len(corpus))
        return corpus

    def _apply(
        self,
        collection: str,
        corpus: KeywordCorpus,
        added: frozenset[tuple[str, int]],
        removed: frozenset[tuple[str, int]],
    ) -> None:
        for document_id, generation in removed:
            corpus.remove(document_id, generation)
        if added:
            records = self.store.chunks_of(collection, sorted({document_id for document_id, _ in added}))
            corpus.add((r.id, r.text, r.metadata) for r in records if _pair(r.metadata) in added)
        corpus.build()

    def forget(self, collection: str) -> None:
        self._served.pop(collection, None)


def _pair(metadata: dict[str, Any]) -> tuple[str, int]:
    return str(metadata.get("document_id")), int(metadata.get("generation", -1))


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
    return _pair(metadata) in ready


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
