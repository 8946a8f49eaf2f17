"""RagService: what the rest of the host calls for collections, documents, ingestion jobs and queries."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_host.config import Settings
from agent_host.db import owner_id
from agent_host.errors import (
    AgentHostError,
    CollectionNotFound,
    DatabaseUnavailable,
    EmbeddingModelUnknown,
    Forbidden,
    InvalidCollectionSettings,
)
from agent_host.rag.embeddings import Embedder, EmbedderRegistry
from agent_host.rag.ingest import Ingestor
from agent_host.rag.intake import Intake
from agent_host.rag.jobs import JobStore
from agent_host.rag.multipart import UploadedFile
from agent_host.rag.parsing import ArchiveLimits, ParseLimits, ParserPool
from agent_host.rag.queue import ensure_schema, queue_app, queue_name, run_worker, worker_name
from agent_host.rag.registry import Registry
from agent_host.rag.retrieval import Candidate, SearchParams, SharedView, search_collection
from agent_host.rag.schemas import (
    CollectionCreate,
    CollectionPublic,
    DocumentPublic,
    Hit,
    JobPublic,
    QueryRequest,
    QueryResult,
    RagFilters,
    UploadResult,
)
from agent_host.rag.store import VectorStore
from agent_host.rag.sweep import sweep
from genailabs_accounts.models import Account

log = logging.getLogger(__name__)


class RagService:
    """What the host's routes call. Safe to call concurrently, and from any number of replicas at once:
    documents, jobs and which documents are ready live in PostgreSQL, chunks in Chroma, work in the queue."""

    def __init__(
        self, settings: Settings, pool: AsyncConnectionPool, store: VectorStore, embedders: EmbedderRegistry
    ) -> None:
        self.settings = settings
        self.registry = Registry(pool)
        self.jobs = JobStore(pool)
        self.store = store
        self.embedders = embedders
        self.view = SharedView(self.registry, store)
        archive = ArchiveLimits(settings.rag_max_unzipped_bytes, settings.rag_max_zip_ratio)
        limits = ParseLimits(settings.rag_parse_timeout, settings.rag_parse_memory_bytes, archive)
        self.parsers = ParserPool(settings.rag_parse_workers, limits)
        self.queue = queue_app(settings.database_url.get_secret_value())
        self.queue_name = queue_name(settings.chroma_url, settings.chroma_path)
        self.ingestor = Ingestor(self.registry, self.jobs, store, self.embedder)
        self.intake = Intake(
            settings, self.registry, self.jobs, self.parsers, (self.queue, self.queue_name), self.sweep
        )
        self._queue_open = False
        self._ready = False
        self._init_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        try:
            await self._initialise()
        except AgentHostError as exc:  # the host still starts; the first RAG call tries again
            log.warning("RAG not ready at start: %s", exc.message)
        if self.settings.rag_inline_worker:
            self._tasks.append(asyncio.create_task(self._inline_worker(), name="rag-worker"))
        self._tasks.append(asyncio.create_task(self._warm_up(), name="rag-warm-up"))

    async def close(self) -> None:
        """A job cut short here goes back to the queue (its worker's shutdown, or its stopped heartbeat)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        if self._queue_open:
            await self.queue.close_async()
        self.parsers.close()

    async def _initialise(self) -> None:
        """Opens the queue and reclaims what ended jobs (or hosts that died mid-upload) left behind. Once."""
        if self._ready:
            return
        async with self._init_lock:
            if self._ready:
                return
            try:
                await ensure_schema(self.settings.database_url.get_secret_value())
                if not self._queue_open:
                    await self.queue.open_async()
                    self._queue_open = True
            except (psycopg.Error, OSError, PoolTimeout) as exc:
                raise DatabaseUnavailable("the ingestion queue's database is unreachable") from exc
            await asyncio.to_thread(self.store.ping)
            for collection in await self.registry.list_collections():
                await asyncio.to_thread(self.store.create, collection.name)
            await self.sweep()
            self._ready = True

    async def sweep(self) -> None:
        await sweep(self.registry, self.jobs, self.store)

    async def _inline_worker(self) -> None:
        """RAG_INLINE_WORKER: this host runs queued jobs itself, as one more worker of the queue.

        A worker process that fails exits and its supervisor starts it again; this one starts again itself.
        """
        settings = self.settings
        while True:
            try:
                await self._initialise()
                await run_worker(
                    self.queue,
                    self.queue_name,
                    self.ingestor.run_job,
                    self.sweep,
                    name=worker_name("host"),
                    concurrency=settings.rag_worker_concurrency,
                    heartbeat=settings.rag_worker_heartbeat_seconds,
                    stalled=settings.rag_worker_stalled_seconds,
                    shutdown_grace=settings.rag_worker_shutdown_seconds,
                )
            except Exception as exc:  # the database went away, say: its jobs stay queued
                log.warning("the inline ingestion worker stopped (%s); it starts again shortly", exc)
            await asyncio.sleep(settings.rag_worker_heartbeat_seconds)

    async def _warm_up(self) -> None:
        """Loads the embedders in use and the BM25 indexes in the background, so first requests are not slow."""
        try:
            await self.embedder(self.settings.embedding_model)
            await self._initialise()
            collections = await self.registry.list_collections()
            for model in dict.fromkeys(c.embedding_model for c in collections):
                try:
                    await self.embedder(model)
                except AgentHostError as exc:  # that collection's queries will say so; the others still warm up
                    log.warning("embedding model not loaded: %s", exc.message)
            for collection in collections:
                await self.view.current(collection.name, collection.version, keywords=True)
        except Exception as exc:
            log.warning("RAG warm-up stopped: %s", exc)

    async def embedder(self, name: str) -> Embedder:
        return await asyncio.to_thread(self.embedders.get, name)

    async def query(self, request: QueryRequest, person: Account) -> QueryResult:
        """Searches the collections the person may read; another's unshared collection is not found."""
        started = time.perf_counter()
        await self._initialise()
        collections = [await self.readable(name, person) for name in dict.fromkeys(request.collections)]
        sources, types = _filter_values(request.filters)
        params = SearchParams(
            mode=request.mode,
            pool=max(request.top_k * 4, 20),
            min_score=self.settings.rag_min_score if request.min_score is None else request.min_score,
            sources=sources,
            types=types,
            vector_weight=self.settings.rag_vector_weight,
            bm25_weight=self.settings.rag_bm25_weight,
            rrf_k=self.settings.rag_rrf_k,
        )
        vectors = {}
        for model in dict.fromkeys(c.embedding_model for c in collections):
            embedder = await self.embedder(model)
            vectors[model] = await asyncio.to_thread(embedder.embed_query, request.query)

        async def search(collection: CollectionPublic) -> list[Candidate]:
            served = await self.view.current(collection.name, collection.version, keywords=request.mode != "vector")
            return await asyncio.to_thread(
                search_collection,
                self.store,
                collection.name,
                request.query,
                vectors[collection.embedding_model],
                served.keywords,
                (served.ready, served.version),
                params,
            )

        found = [c for group in await asyncio.gather(*(search(c) for c in collections)) for c in group]
        found.sort(key=lambda c: (c.score, c.vector_score or 0.0), reverse=True)
        hits = [_hit(rank, candidate) for rank, candidate in enumerate(found[: request.top_k], start=1)]
        took = (time.perf_counter() - started) * 1000
        return QueryResult(query=request.query, mode=request.mode, hits=hits, took_ms=round(took, 2))

    # Access: a person reads their own collections, the shared ones, and (an administrator) all; they change
    # their own (an administrator any). Another's unshared collection is not found; a shared one refuses change.

    async def list_collections(self, person: Account, everyone: bool = False) -> list[CollectionPublic]:
        """The person's own and the shared collections; with `everyone`, an administrator sees all."""
        if everyone and not person.is_admin:
            raise Forbidden("listing everyone's collections (all=true) needs an administrator")
        reader = None if everyone else owner_id(person)
        return [_as_seen_by(c, person) for c in await self.registry.list_collections(reader)]

    async def readable(self, name: str, person: Account) -> CollectionPublic:
        collection = _as_seen_by(await self.registry.get_collection(name), person)
        if not (collection.shared or collection.writable):
            raise CollectionNotFound(name)
        return collection

    async def writable(self, name: str, person: Account) -> CollectionPublic:
        """The collection if the person may change it: not found if they cannot read it, 403 if only read it."""
        collection = await self.readable(name, person)
        if not collection.writable:
            raise Forbidden(
                f"collection {name!r} is shared read-only: only its owner or an administrator may change it"
            )
        return collection

    async def set_shared(self, name: str, shared: bool, person: Account) -> CollectionPublic:
        await self.writable(name, person)
        return _as_seen_by(await self.registry.set_shared(name, shared), person)

    async def create_collection(self, body: CollectionCreate, person: Account) -> CollectionPublic:
        await self._initialise()
        model = body.embedding_model or self.settings.embedding_model
        if model not in self.embedders.names():
            known = ", ".join(self.embedders.names())
            raise EmbeddingModelUnknown(f"unknown embedding model {model!r}; known models: {known}")
        tokens = body.chunk_tokens or self.settings.rag_chunk_tokens
        overlap = self.settings.rag_chunk_overlap if body.chunk_overlap is None else body.chunk_overlap
        if overlap >= tokens:
            raise InvalidCollectionSettings(f"chunk_overlap ({overlap}) must be smaller than chunk_tokens ({tokens})")
        created = await self.registry.create_collection(
            owner_id(person), body.name, body.description, tokens, overlap, model
        )
        try:
            await asyncio.to_thread(self.store.create, body.name, True)
        except AgentHostError:
            await self.registry.delete_collection(body.name)
            raise
        return _as_seen_by(created, person)

    async def delete_collection(self, name: str, person: Account) -> None:
        await self._initialise()
        await self.writable(name, person)
        await self.registry.delete_collection(name)
        self.view.forget(name)
        await asyncio.to_thread(self.store.drop, name)

    async def list_documents(self, collection: str, person: Account) -> list[DocumentPublic]:
        await self.readable(collection, person)
        return await self.registry.list_documents(collection)

    async def delete_document(self, collection: str, document_id: str, person: Account) -> None:
        await self._initialise()
        await self.writable(collection, person)
        # Invisible to every replica once this commits (their next query sees the collection's new version).
        await self.registry.delete_document(collection, document_id)
        await asyncio.to_thread(self.store.delete_document, collection, document_id)

    async def upload(self, collection: str, files: list[UploadedFile], wait: bool, person: Account) -> UploadResult:
        """Per-file results; the accepted files are indexed by one job (awaited when `wait`), the person's."""
        await self._initialise()
        config = await self.writable(collection, person)
        return await self.intake.upload(config.name, files, wait, str(owner_id(person)))

    async def reindex(self, collection: str, document_id: str, person: Account) -> JobPublic:
        await self._initialise()
        config = await self.writable(collection, person)
        return await self.intake.reindex(config.name, document_id, str(owner_id(person)))

    async def job(self, job_id: str, person: Account) -> JobPublic:
        return await self.jobs.public(job_id, str(owner_id(person)))


def _as_seen_by(collection: CollectionPublic, person: Account) -> CollectionPublic:
    """The collection with `writable` for this person: its owner or an administrator."""
    mine = collection.owner_id is not None and collection.owner_id == str(owner_id(person))
    return collection.model_copy(update={"writable": mine or person.is_admin})


def _filter_values(filters: RagFilters | None) -> tuple[list[str] | None, list[str] | None]:
    if filters is None:
        return None, None
    sources = [filters.source] if isinstance(filters.source, str) else filters.source
    types = [filters.type] if isinstance(filters.type, str) else filters.type
    return (list(sources) if sources is not None else None), (list(types) if types is not None else None)


def _hit(rank: int, candidate: Candidate) -> Hit:
    meta = candidate.metadata or {}
    return Hit(
        rank=rank,
        chunk_id=candidate.chunk_id,
        document_id=str(meta["document_id"]),
        collection=candidate.collection,
        source=str(meta["source"]),
        type=meta["type"],
        page=meta.get("page"),
        section=meta.get("section"),
        start=int(meta.get("start", 0)),
        end=int(meta.get("end", 0)),
        text=candidate.text or "",
        score=round(candidate.score, 6),
        vector_score=None if candidate.vector_score is None else round(candidate.vector_score, 6),
        bm25_score=None if candidate.bm25_score is None else round(candidate.bm25_score, 6),
    )


@asynccontextmanager
async def open_rag(settings: Settings, pool: AsyncConnectionPool) -> AsyncIterator[RagService]:
    """Opens Chroma, the registry and the queue, sweeps, starts the inline worker if any; closes it all on exit."""
    store = VectorStore(settings.chroma_path, settings.chroma_url)
    service = RagService(settings, pool, store, EmbedderRegistry(settings.model_cache_dir))
    await service.start()
    try:
        yield service
    finally:
        await service.close()
