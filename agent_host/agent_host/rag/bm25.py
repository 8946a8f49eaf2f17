"""BM25 over a collection's chunks with bm25s: a mutable tokenised corpus and immutable searchable snapshots."""

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN
from bm25s.tokenization import Tokenized

# bm25s's own token pattern and English stop words, so scores match the library's defaults.
TOKEN = re.compile(r"(?u)\b\w\w+\b")
STOPWORDS = frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    return [token for token in TOKEN.findall(text.lower()) if token not in STOPWORDS]


@dataclass(frozen=True)
class KeywordHit:
    chunk_id: str
    score: float


@dataclass
class _Entry:
    tokens: np.ndarray  # int32 ids into the corpus vocabulary
    document_id: str
    generation: int
    source: str
    type: str


@dataclass
class KeywordIndex:
    """A searchable snapshot; the corpus builds a new one after every change, queries never wait on a build."""

    retriever: bm25s.BM25 | None
    vocab: dict[str, int]
    chunk_ids: list[str]
    generations: np.ndarray  # per chunk: a code for its (document id, generation)
    generation_codes: dict[tuple[str, int], int]
    sources: np.ndarray
    source_codes: dict[str, int]
    types: np.ndarray
    type_codes: dict[str, int]
    _mask_cache: tuple[int, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def position(self, chunk_id: str) -> int | None:
        return self._positions.get(chunk_id)

    def __post_init__(self) -> None:
        self._positions = {chunk_id: i for i, chunk_id in enumerate(self.chunk_ids)}

    def visible(self, ready: frozenset[tuple[str, int]], version: int) -> np.ndarray:
        """1.0 for chunks of ready (document, generation) pairs; cached until the ready set changes."""
        cached = self._mask_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        codes = [self.generation_codes[pair] for pair in ready if pair in self.generation_codes]
        mask = np.isin(self.generations, np.asarray(codes, dtype=np.int32)).astype(np.float32)
        self._mask_cache = (version, mask)
        return mask

    def matching(self, sources: list[str] | None, types: list[str] | None) -> np.ndarray | None:
        """1.0 for chunks passing the source and type filters; None when there are no filters."""
        mask: np.ndarray | None = None
        for values, codes, column in ((sources, self.source_codes, self.sources), (types, self.type_codes, self.types)):
            if values is None:
                continue
            wanted = np.asarray([codes[v] for v in values if v in codes], dtype=np.int32)
            selected = np.isin(column, wanted)
            mask = selected if mask is None else mask & selected
        return None if mask is None else mask.astype(np.float32)

    def scores(self, query: str, weights: np.ndarray) -> np.ndarray | None:
        """BM25 of every chunk for the query, times `weights`; None when no query term occurs in the corpus."""
        if self.retriever is None:
            return None
        ids = [self.vocab[token] for token in tokenize(query) if token in self.vocab]
        if not ids:
            return None
        return np.asarray(self.retriever.get_scores_from_ids(ids, weight_mask=weights), dtype=np.float32)

    def top(self, scores: np.ndarray, n: int) -> list[KeywordHit]:
        """The n best chunks with a score above zero, best first (argpartition: no sort of the whole corpus)."""
        n = min(n, len(scores))
        if n == 0:
            return []
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [KeywordHit(self.chunk_ids[i], float(scores[i])) for i in best if scores[i] > 0]


class KeywordCorpus:
    """The tokenised chunks of one collection; add/remove from any thread, then build() a new snapshot."""

    def __init__(self) -> None:
        self._vocab: dict[str, int] = {}
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        # Builds run one at a time, so a slow older build never publishes over a newer one.
        self._build_lock = threading.Lock()
        self.index = _empty_index()

    def add(self, chunks: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Chunks as (chunk id, text, metadata with document_id, generation, source, type)."""
        tokenised = [(chunk_id, tokenize(text), meta) for chunk_id, text, meta in chunks]
        with self._lock:
            for chunk_id, tokens, meta in tokenised:
                ids = np.fromiter((self._vocab.setdefault(t, len(self._vocab)) for t in tokens), dtype=np.int32)
                self._entries[chunk_id] = _Entry(
                    ids, str(meta["document_id"]), int(meta["generation"]), str(meta["source"]), str(meta["type"])
                )

    def remove(self, document_id: str, generation: int | None = None) -> None:
        with self._lock:
            gone = [
                chunk_id
                for chunk_id, entry in self._entries.items()
                if entry.document_id == document_id and (generation is None or entry.generation == generation)
            ]
            for chunk_id in gone:
                del self._entries[chunk_id]

    def build(self) -> KeywordIndex:
        """Indexes the current corpus (CPU-bound: call from a worker thread) and publishes the snapshot."""
        with self._build_lock:
            self.index = self._build()
            return self.index

    def _build(self) -> KeywordIndex:
        with self._lock:
            entries = list(self._entries.items())
            vocab = dict(self._vocab)
        if not entries:
            return _empty_index()
        retriever = bm25s.BM25()
        corpus = Tokenized(ids=[entry.tokens.tolist() for _, entry in entries], vocab=vocab)
        retriever.index(corpus, create_empty_token=False, show_progress=False)
        generation_codes: dict[tuple[str, int], int] = {}
        source_codes: dict[str, int] = {}
        type_codes: dict[str, int] = {}

        def codes(values: Iterable[Any], table: dict[Any, int]) -> np.ndarray:
            return np.fromiter((table.setdefault(v, len(table)) for v in values), dtype=np.int32)

        return KeywordIndex(
            retriever=retriever,
            vocab=vocab,
            chunk_ids=[chunk_id for chunk_id, _ in entries],
            generations=codes(((e.document_id, e.generation) for _, e in entries), generation_codes),
            generation_codes=generation_codes,
            sources=codes((e.source for _, e in entries), source_codes),
            source_codes=source_codes,
            types=codes((e.type for _, e in entries), type_codes),
            type_codes=type_codes,
        )

    def __len__(self) -> int:
        return len(self._entries)


def _empty_index() -> KeywordIndex:
    empty = np.zeros(0, dtype=np.int32)
    return KeywordIndex(None, {}, [], empty, {}, empty, {}, empty, {})
