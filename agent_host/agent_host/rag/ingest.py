"""The ingestion worker: chunk, embed in batches and write to Chroma as a pipeline, then make documents visible."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent_host.errors import AgentHostError, DocumentNotFound
from agent_host.rag.bm25 import KeywordCorpus
from agent_host.rag.chunking import Chunk, chunk_document
from agent_host.rag.embeddings import Embedder
from agent_host.rag.jobs import FileWork, Job
from agent_host.rag.registry import Registry
from agent_host.rag.retrieval import KeywordIndexes, Visibility
from agent_host.rag.schemas import CollectionPublic
from agent_host.rag.store import VectorStore, chunk_id, chunk_metadata

log = logging.getLogger(__name__)

EMBED_BATCH = 128
# While a job runs, BM25 is rebuilt at most this often, and only if a rebuild takes less than QUICK_REBUILD_SECONDS;
# it is always rebuilt before the job reports done.
REBUILD_INTERVAL_SECONDS = 1.0
QUICK_REBUILD_SECONDS = 0.25

Batch = list[tuple[FileWork, Chunk]]
Embedded = tuple[Batch, np.ndarray]


@dataclass
class _KeywordChanges:
    """Chunks to add to, and (document, generation) pairs to drop from, the collection's BM25 corpus."""

    added: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    removed: list[tuple[str, int]] = field(default_factory=list)

    def apply(self, corpus: KeywordCorpus) -> None:
        for document_id, generation in self.removed:
            corpus.remove(document_id, generation)
        corpus.add(self.added)


class Ingestor:
    """One worker task runs queued jobs in order, so writes to the index never interleave."""

    def __init__(
        self,
        registry: Registry,
        store: VectorStore,
        visibility: Visibility,
        keywords: KeywordIndexes,
        embedder: Callable[[str], Awaitable[Embedder]],
        changes: asyncio.Lock,
    ) -> None:
        self.registry = registry
        self.store = store
        self.visibility = visibility
        self.keywords = keywords
        self.embedder = embedder
        # Held while a document becomes visible or is deleted, so a delete never races a job's last step.
        self.changes = changes
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        # Per collection: how long the last BM25 rebuild took, and when it ended.
        self._rebuilds: dict[str, tuple[float, float]] = {}

    def submit(self, job: Job) -> None:
        self._queue.put_nowait(job)

    async def run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._process(job)
            except Exception as exc:  # the worker outlives any one job
                log.exception("ingestion job %s failed", job.id)
                for work in job.files:
                    if not work.finished:
                        await self._fail(job, work, exc)
            finally:
                if not job.done.is_set():
                    job.finish()

    async def _process(self, job: Job) -> None:
        """Three stages at once: chunk the next files, embed a batch, write the previous batch."""
        job.status = "running"
        collection = await self.registry.get_collection(job.collection)
        embedder = await self.embedder(collection.embedding_model)
        pending = _KeywordChanges()
        chunked: asyncio.Queue[FileWork | None] = asyncio.Queue()
        batches: asyncio.Queue[Embedded | None] = asyncio.Queue(maxsize=2)
        chunker = asyncio.create_task(self._chunk_all(job, collection, embedder, chunked))
        writer = asyncio.create_task(self._write(job, batches, pending))
        try:
            waiting: Batch = []
            while (work := await chunked.get()) is not None:
                waiting.extend((work, chunk) for chunk in work.chunks or ())
                while len(waiting) >= EMBED_BATCH:
                    await self._embed(job, waiting[:EMBED_BATCH], embedder, batches)
                    waiting = waiting[EMBED_BATCH:]
            if waiting:
                await self._embed(job, waiting, embedder, batches)
        finally:
            chunker.cancel()
            await batches.put(None)
            await writer
        await self._refresh_keywords(job.collection, pending, force=True)
        job.finish()

    async def _chunk_all(
        self, job: Job, collection: CollectionPublic, embedder: Embedder, chunked: asyncio.Queue[FileWork | None]
    ) -> None:
        """Chunks file after file while the batches before are embedded (the queue is unbounded: puts never wait)."""
        try:
            for work in job.files:
                await self._chunk(job, work, collection, embedder)
                if work.chunks and not work.finished:
                    chunked.put_nowait(work)
        finally:
            chunked.put_nowait(None)

    async def _chunk(self, job: Job, work: FileWork, collection: CollectionPublic, embedder: Embedder) -> None:
        try:
            if job.kind == "reindex":
                generation = await self.registry.begin_reindex(work.document_id)
                if generation is None:
                    raise DocumentNotFound(f"document {work.document_id} was deleted or is still being indexed")
                work.generation = generation
            chunks = await asyncio.to_thread(
                chunk_document,
                work.document,
                collection.chunk_tokens,
                collection.chunk_overlap,
                embedder.count_tokens,
                embedder.count_tokens_many,
            )
            if not chunks:
                raise ValueError(f"{work.result.filename}: no text to index")
            work.chunks = chunks
        except Exception as exc:
            await self._fail(job, work, exc)

    async def _embed(self, job: Job, batch: Batch, embedder: Embedder, batches: asyncio.Queue[Embedded | None]) -> None:
        """Embeds while the writer stores the previous batch: the two stages overlap."""
        batch = [(work, chunk) for work, chunk in batch if not work.finished]
        if not batch:
            return
        try:
            vectors = await asyncio.to_thread(_embed_unique, embedder, [chunk.text for _, chunk in batch])
        except Exception as exc:
            for work in {id(w): w for w, _ in batch}.values():
                await self._fail(job, work, exc)
            return
        await batches.put(_with_vectors(batch, vectors))

    async def _write(self, job: Job, batches: asyncio.Queue[Embedded | None], pending: _KeywordChanges) -> None:
        """Consumes every batch, whatever happens to one, so the embedding stage never waits on a dead writer."""
        while (item := await batches.get()) is not None:
            batch, vectors = item
            live = [i for i, (work, _) in enumerate(batch) if not work.finished]
            files = list({id(batch[i][0]): batch[i][0] for i in live}.values())
            try:
                await self._write_batch(job, [batch[i] for i in live], vectors[live], files, pending)
            except Exception as exc:
                for work in files:
                    if not work.finished:
                        await self._fail(job, work, exc)

    async def _write_batch(
        self, job: Job, batch: Batch, vectors: np.ndarray, files: list[FileWork], pending: _KeywordChanges
    ) -> None:
        if not batch:
            return
        ids = [chunk_id(work.document_id, work.gen, chunk.index) for work, chunk in batch]
        metadatas = [_metadata(work, chunk) for work, chunk in batch]
        texts = [chunk.text for _, chunk in batch]
        await asyncio.to_thread(self.store.add, job.collection, ids, vectors, texts, metadatas)
        for work, _ in batch:
            work.written += 1
        for work in files:
            if work.chunks is not None and work.written == len(work.chunks) and not work.finished:
                await self._finalise(job, work, pending)
        await self._refresh_keywords(job.collection, pending, force=False)

    async def _finalise(self, job: Job, work: FileWork, pending: _KeywordChanges) -> None:
        """Every chunk is written: the document (or its new generation) becomes visible in one step."""
        count = len(work.chunks or ())
        async with self.changes:
            if job.kind == "ingest":
                ready = await self.registry.mark_ready(work.document_id, count)
                previous = None
            else:
                previous = await self.registry.finish_reindex(work.document_id, work.gen, count)
                ready = previous is not None
            if ready:
                self.visibility.show(job.collection, work.document_id, work.gen, replaces=previous)
        if not ready:
            await self._fail(job, work, DocumentNotFound(f"{work.result.filename} was deleted while being indexed"))
            return
        work.finished = True
        work.result.status, work.result.chunks = "indexed", count
        pending.added.extend(
            (chunk_id(work.document_id, work.gen, chunk.index), chunk.text, _metadata(work, chunk))
            for chunk in work.chunks or ()
        )
        if previous is not None:
            pending.removed.append((work.document_id, previous))
            await asyncio.to_thread(self.store.delete_document, job.collection, work.document_id, previous)

    async def _fail(self, job: Job, work: FileWork, error: Exception) -> None:
        """Nothing half-indexed: the chunks written so far go, and so does the row (or the pending re-index)."""
        if not isinstance(error, AgentHostError):
            log.warning("indexing %s failed: %s", work.result.filename, error)
        work.fail(error)
        if work.generation is None:  # a re-index that never reserved its generation wrote nothing
            return
        try:
            await asyncio.to_thread(self.store.delete_document, job.collection, work.document_id, work.generation)
            if job.kind == "ingest":
                await self.registry.remove_document(work.document_id)
            else:
                await self.registry.abort_reindex(work.document_id)
        except AgentHostError as exc:
            # The row stays 'indexing' (or pending): the next start cleans it up.
            log.warning("could not clean up %s: %s", work.document_id, exc.message)

    async def _refresh_keywords(self, collection: str, pending: _KeywordChanges, force: bool) -> None:
        """Rebuilds BM25 with the finished documents: always at the end of a job, mid-job only when quick."""
        if not pending.added and not pending.removed:
            return
        took, ended = self._rebuilds.get(collection, (0.0, 0.0))
        if not force and (took > QUICK_REBUILD_SECONDS or time.monotonic() - ended < REBUILD_INTERVAL_SECONDS):
            return
        changes = _KeywordChanges(list(pending.added), list(pending.removed))
        pending.added.clear()
        pending.removed.clear()
        started = time.monotonic()
        await self.keywords.rebuild(collection, changes.apply)
        self._rebuilds[collection] = (time.monotonic() - started, time.monotonic())


def _with_vectors(batch: Batch, vectors: np.ndarray) -> Embedded:
    return batch, np.asarray(vectors, dtype=np.float32)


def _metadata(work: FileWork, chunk: Chunk) -> dict[str, Any]:
    return chunk_metadata(
        work.document_id,
        work.gen,
        work.result.filename,
        work.document.type,
        chunk.index,
        chunk.page,
        chunk.section,
        chunk.start,
        chunk.end,
    )


def _embed_unique(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Each distinct text embedded once: a file of one repeated line (600 KB of '#') costs one embedding, not 7000."""
    unique = list(dict.fromkeys(texts))
    if len(unique) == len(texts):
        return embedder.embed_documents(texts)
    vectors = embedder.embed_documents(unique)
    row = {text: number for number, text in enumerate(unique)}
    return vectors[[row[text] for text in texts]]
