"""Running an ingestion job: chunk, embed in batches and write to Chroma as a pipeline, then make documents visible."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from agent_host.errors import AgentHostError, CollectionNotFound, DocumentNotFound
from agent_host.rag.chunking import Chunk, chunk_document
from agent_host.rag.embeddings import Embedder
from agent_host.rag.jobs import FileWork, JobRun, JobStore, QueuedFile
from agent_host.rag.loaders import LoadedDocument
from agent_host.rag.registry import Registry, StoredDocument
from agent_host.rag.schemas import CollectionPublic, FileResult
from agent_host.rag.store import VectorStore, chunk_id, chunk_metadata
from agent_host.rag.uploads import stored_document

log = logging.getLogger(__name__)

EMBED_BATCH = 128
# Starts of one job before its unfinished files are failed: a file that kills its worker each time stops here.
MAX_ATTEMPTS = 3

Batch = list[tuple[FileWork, Chunk]]
Embedded = tuple[Batch, np.ndarray]


class Ingestor:
    """Runs one job at a time per call: chunk, embed and write as a pipeline, then make each document visible.

    Idempotent per attempt: a job retried after its worker died redoes only its unfinished files, each from
    the text kept in the registry, after removing whatever chunks the earlier attempt wrote.
    """

    def __init__(
        self,
        registry: Registry,
        jobs: JobStore,
        store: VectorStore,
        embedder: Callable[[str], Awaitable[Embedder]],
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.registry = registry
        self.jobs = jobs
        self.store = store
        self.embedder = embedder
        self.max_attempts = max_attempts

    async def run_job(self, job_id: str, worker: str) -> None:
        run = await self.jobs.start(job_id, worker)
        if run is None:
            log.info("job %s has ended or was reclaimed; nothing to do", job_id)
            return
        if run.attempts > self.max_attempts:
            log.warning("job %s given up after %d attempts", job_id, run.attempts - 1)
            await self._give_up(run, f"given up after {run.attempts - 1} attempts: the worker stopped each time")
            return
        try:
            works = await self._works(run)
            if works:
                await self._process(run, works)
        except AgentHostError as exc:
            if not isinstance(exc, CollectionNotFound):
                raise  # the database or Chroma is down: the queue retries the job later
            await self._give_up(run, exc.message)
            return
        await self.jobs.finish(run.id)

    async def _give_up(self, run: JobRun, reason: str) -> None:
        for queued in run.files:
            if queued.status == "queued":
                await self._clean(run, queued.document_id, queued.generation)
        await self.jobs.finish(run.id, error=reason)

    async def _works(self, run: JobRun) -> list[FileWork]:
        """The files still to do, each from the registry's text; a retry first removes what it wrote before."""
        works = []
        for queued in run.files:
            if queued.status != "queued":
                continue
            try:
                stored = await self.registry.get_document(run.collection, queued.document_id)
            except DocumentNotFound as exc:
                result = FileResult(filename=queued.filename, status="queued", document_id=queued.document_id)
                work = FileWork(queued.position, result, queued.document_id, _empty(queued.filename), generation=None)
                await self.jobs.failed(run.id, queued.position, work.fail(exc))
                continue
            if _already_visible(run, queued, stored):  # the earlier attempt stopped right after its finalise
                await self.jobs.indexed(run.id, queued.position, stored.public.chunks)
                continue
            work = stored_document(stored, queued.position)
            work.generation = stored.generation if run.kind == "ingest" else queued.generation
            if run.attempts > 1 and work.generation is not None:
                await asyncio.to_thread(self.store.delete_document, run.collection, work.document_id, work.generation)
            works.append(work)
        return works

    async def _process(self, run: JobRun, works: list[FileWork]) -> None:
        """Three stages at once: chunk the next files, embed a batch, write the previous batch."""
        collection = await self.registry.get_collection(run.collection)
        embedder = await self.embedder(collection.embedding_model)
        chunked: asyncio.Queue[FileWork | None] = asyncio.Queue()
        batches: asyncio.Queue[Embedded | None] = asyncio.Queue(maxsize=2)
        chunker = asyncio.create_task(self._chunk_all(run, works, collection, embedder, chunked))
        writer = asyncio.create_task(self._write(run, batches))
        try:
            waiting: Batch = []
            while (work := await chunked.get()) is not None:
                waiting.extend((work, chunk) for chunk in work.chunks or ())
                while len(waiting) >= EMBED_BATCH:
                    await self._embed(run, waiting[:EMBED_BATCH], embedder, batches)
                    waiting = waiting[EMBED_BATCH:]
            if waiting:
                await self._embed(run, waiting, embedder, batches)
        finally:
            chunker.cancel()
            await batches.put(None)
            await writer

    async def _chunk_all(
        self,
        run: JobRun,
        works: list[FileWork],
        collection: CollectionPublic,
        embedder: Embedder,
        chunked: asyncio.Queue[FileWork | None],
    ) -> None:
        """Chunks file after file while the batches before are embedded (the queue is unbounded: puts never wait)."""
        try:
            for work in works:
                await self._chunk(run, work, collection, embedder)
                if work.chunks and not work.finished:
                    chunked.put_nowait(work)
        finally:
            chunked.put_nowait(None)

    async def _chunk(self, run: JobRun, work: FileWork, collection: CollectionPublic, embedder: Embedder) -> None:
        try:
            if work.generation is None:  # a re-index reserves its generation once; a retry reuses it
                generation = await self.registry.begin_reindex(work.document_id, run.id)
                if generation is None:
                    raise DocumentNotFound(f"document {work.document_id} was deleted or is still being indexed")
                work.generation = generation
                await self.jobs.reserve(run.id, work.position, generation)
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
            await self.jobs.chunked(run.id, work.position, len(chunks))
        except Exception as exc:
            await self._fail(run, work, exc)

    async def _embed(
        self, run: JobRun, batch: Batch, embedder: Embedder, batches: asyncio.Queue[Embedded | None]
    ) -> None:
        """Embeds while the writer stores the previous batch: the two stages overlap."""
        batch = [(work, chunk) for work, chunk in batch if not work.finished]
        if not batch:
            return
        try:
            vectors = await asyncio.to_thread(_embed_unique, embedder, [chunk.text for _, chunk in batch])
        except Exception as exc:
            for work in {id(w): w for w, _ in batch}.values():
                await self._fail(run, work, exc)
            return
        await batches.put(_with_vectors(batch, vectors))

    async def _write(self, run: JobRun, batches: asyncio.Queue[Embedded | None]) -> None:
        """Consumes every batch, whatever happens to one, so the embedding stage never waits on a dead writer."""
        while (item := await batches.get()) is not None:
            batch, vectors = item
            live = [i for i, (work, _) in enumerate(batch) if not work.finished]
            files = list({id(batch[i][0]): batch[i][0] for i in live}.values())
            try:
                await self._write_batch(run, [batch[i] for i in live], vectors[live], files)
            except Exception as exc:
                for work in files:
                    if not work.finished:
                        await self._fail(run, work, exc)

    async def _write_batch(self, run: JobRun, batch: Batch, vectors: np.ndarray, files: list[FileWork]) -> None:
        if not batch:
            return
        ids = [chunk_id(work.document_id, work.gen, chunk.index) for work, chunk in batch]
        metadatas = [_metadata(work, chunk) for work, chunk in batch]
        texts = [chunk.text for _, chunk in batch]
        await asyncio.to_thread(self.store.add, run.collection, ids, vectors, texts, metadatas)
        for work, _ in batch:
            work.written += 1
        await self.jobs.progress(run.id, [(work.position, work.written) for work in files])
        for work in files:
            if work.chunks is not None and work.written == len(work.chunks) and not work.finished:
                await self._finalise(run, work)

    async def _finalise(self, run: JobRun, work: FileWork) -> None:
        """Every chunk is written: the document (or its new generation) becomes visible in one transaction."""
        count = len(work.chunks or ())
        if run.kind == "ingest":
            ready = await self.registry.finalise(run.collection, work.document_id, count)
            previous = None
        else:
            previous = await self.registry.finish_reindex(run.collection, work.document_id, work.gen, count)
            ready = previous is not None
        if not ready:
            await self._fail(run, work, DocumentNotFound(f"{work.result.filename} was deleted while being indexed"))
            return
        work.finished = True
        work.result.status, work.result.chunks = "indexed", count
        await self.jobs.indexed(run.id, work.position, count)
        if previous is not None:
            await asyncio.to_thread(self.store.delete_document, run.collection, work.document_id, previous)

    async def _fail(self, run: JobRun, work: FileWork, error: Exception) -> None:
        """Nothing half-indexed: the chunks written so far go, and so does the row (or the pending re-index)."""
        if not isinstance(error, AgentHostError):
            log.warning("indexing %s failed: %s", work.result.filename, error)
        problem = work.fail(error)
        await self._clean(run, work.document_id, work.generation)
        await self.jobs.failed(run.id, work.position, problem)

    async def _clean(self, run: JobRun, document_id: str, generation: int | None) -> None:
        if generation is None:  # a re-index that never reserved its generation wrote nothing
            return
        try:
            await asyncio.to_thread(self.store.delete_document, run.collection, document_id, generation)
            if run.kind == "ingest":
                await self.registry.remove_document(document_id)
            else:
                await self.registry.abort_reindex(document_id)
        except AgentHostError as exc:
            # The row stays behind for the next sweep (its job has ended, so it is a leftover then).
            log.warning("could not clean up %s: %s", document_id, exc.message)


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


def _empty(filename: str) -> LoadedDocument:
    return LoadedDocument(filename=filename, type="txt", sections=[], pages=None)


def _already_visible(run: JobRun, queued: QueuedFile, stored: StoredDocument) -> bool:
    """Whether this file's document already shows what the job writes (never rewrite a visible generation)."""
    if run.kind == "ingest":
        return stored.public.status == "ready"
    return queued.generation is not None and stored.generation == queued.generation
