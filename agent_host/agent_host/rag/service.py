"""RagService: what the rest of the host calls for collections, documents, ingestion jobs and queries."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from psycopg_pool import AsyncConnectionPool

from agent_host.config import Settings
from agent_host.db import owner_id
from agent_host.errors import (
    AgentHostError,
    CollectionNotFound,
    EmbeddingModelUnknown,
    Forbidden,
    InvalidCollectionSettings,
)
from agent_host.rag.embeddings import Embedder, EmbedderRegistry
from agent_host.rag.ingest import Ingestor
from agent_host.rag.jobs import Job, JobBoard
from agent_host.rag.multipart import UploadedFile
from agent_host.rag.parsing import ArchiveLimits, ParseLimits, ParserPool
from agent_host.rag.registry import Registry
from agent_host.rag.retrieval import Candidate, KeywordIndexes, SearchParams, Visibility, search_collection
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
from agent_host.rag.uploads import accept_files, stored_document
from genailabs_accounts.models import Account

log = logging.getLogger(__name__)


class RagService:
    """Safe to call concurrently: queries read immutable snapshots while the one ingestion worker writes."""

    def __init__(self, settings: Settings, registry: Registry, store: VectorStore, embedders: EmbedderRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.embedders = embedders
        self.visibility = Visibility()
        self.keywords = KeywordIndexes(store)
        self.jobs = JobBoard()
        archive = ArchiveLimits(settings.rag_max_unzipped_bytes, settings.rag_max_zip_ratio)
        limits = ParseLimits(settings.rag_parse_timeout, settings.rag_parse_memory_bytes, archive)
        self.parsers = ParserPool(settings.rag_parse_workers, limits)
        self.changes = asyncio.Lock()
        self.ingestor = Ingestor(registry, store, self.visibility, self.keywords, self.embedder, self.changes)
        self._ready = False
        self._init_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.ingestor.run(), name="rag-ingest"))
        try:
            await self._initialise()
        except AgentHostError as exc:  # the host still starts; the first RAG call tries again
            log.warning("RAG not ready at start: %s", exc.message)
        self._tasks.append(asyncio.create_task(self._warm_up(), name="rag-warm-up"))

    async def close(self) -> None:
        """A job cut short leaves rows 'indexing': the next start removes them and their chunks."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        self.parsers.close()

    async def _initialise(self) -> None:
        """Removes what a crash left half-indexed, then loads which documents are ready. Once."""
        if self._ready:
            return
        async with self._init_lock:
            if self._ready:
                return
            await asyncio.to_thread(self.store.ping)
            for collection in await self.registry.list_collections():
                await asyncio.to_thread(self.store.create, collection.name)
            for leftover in await self.registry.leftovers():
                await asyncio.to_thread(
                    self.store.delete_document, leftover.collection, leftover.document_id, leftover.generation
                )
                if leftover.first_index:
                    await self.registry.remove_document(leftover.document_id)
                else:
                    await self.registry.abort_reindex(leftover.document_id)
                log.info("removed half-indexed document %s from %r", leftover.document_id, leftover.collection)
            self.visibility.load(await self.registry.ready_generations())
            self._ready = True

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
                await self.keywords.corpus(collection.name)
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
            keywords = None if request.mode == "vector" else (await self.keywords.corpus(collection.name)).index
            return await asyncio.to_thread(
                search_collection,
                self.store,
                collection.name,
                request.query,
                vectors[collection.embedding_model],
                keywords,
                self.visibility.ready(collection.name),
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
        async with self.changes:
            await self.registry.delete_collection(name)
            self.visibility.drop(name)
        self.keywords.drop(name)
        await asyncio.to_thread(self.store.drop, name)

    async def list_documents(self, collection: str, person: Account) -> list[DocumentPublic]:
        await self.readable(collection, person)
        return await self.registry.list_documents(collection)

    async def delete_document(self, collection: str, document_id: str, person: Account) -> None:
        await self._initialise()
        await self.writable(collection, person)
        async with self.changes:
            await self.registry.delete_document(collection, document_id)
            self.visibility.hide(collection, document_id)
        await asyncio.to_thread(self.store.delete_document, collection, document_id)
        await self.keywords.rebuild(collection, lambda corpus: corpus.remove(document_id))

    async def upload(self, collection: str, files: list[UploadedFile], wait: bool, person: Account) -> UploadResult:
        """Per-file results; the accepted files are indexed by one job (awaited when `wait`), the person's."""
        await self._initialise()
        config = await self.writable(collection, person)
        results, accepted = await accept_files(self.registry, self.settings, config.name, files, self.parsers.parse)
        if not accepted:
            return UploadResult(job=None, files=results)
        job = Job(collection=config.name, kind="ingest", files=accepted, owner=str(owner_id(person)))
        self.jobs.add(job)
        self.ingestor.submit(job)
        if wait:
            await job.done.wait()
        return UploadResult(job=job.public(), files=[result.model_copy() for result in results])

    async def reindex(self, collection: str, document_id: str, person: Account) -> JobPublic:
        """Re-chunks and re-embeds from the stored text; the old generation serves queries until the new is ready."""
        await self._initialise()
        config = await self.writable(collection, person)
        stored = await self.registry.get_document(config.name, document_id)
        job = Job(collection=config.name, kind="reindex", files=[stored_document(stored)], owner=str(owner_id(person)))
        self.jobs.add(job)
        self.ingestor.submit(job)
        return job.public()

    def job(self, job_id: str, person: Account) -> JobPublic:
        return self.jobs.get(job_id, str(owner_id(person))).public()


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
    """Opens Chroma and the registry, cleans up after a crash, starts the ingestion worker; closes it all on exit."""
    service = RagService(
        settings,
        Registry(pool),
        VectorStore(settings.chroma_path, settings.chroma_url),
        EmbedderRegistry(settings.model_cache_dir),
    )
    await service.start()
    try:
        yield service
    finally:
        await service.close()
