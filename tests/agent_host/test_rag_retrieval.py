"""RagService in process on real PostgreSQL, Chroma and embedding model: fusion, merging, queries during jobs."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from account_support import somebody, store_account
from rag_support import own_database

from agent_host.config import Settings
from agent_host.errors import VectorStoreUnavailable
from agent_host.rag.embeddings import EmbedderRegistry
from agent_host.rag.multipart import UploadedFile
from agent_host.rag.schemas import CollectionCreate, QueryRequest, RagFilters
from agent_host.rag.service import RagService
from agent_host.rag.store import VectorStore
from agent_host.sessions.store import open_pool
from procs import MODEL_CACHE, PostgresInstance, start_chroma_server

# The service's worker task lives in the loop its fixture ran in: the tests must await in that same loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")

PETS = [
    ("cats.txt", "Cats sleep for up to sixteen hours a day and groom themselves often."),
    ("dogs.txt", "Dogs need a walk twice a day; a border collie needs far more exercise than a pug."),
    ("fish.txt", "Goldfish live in cold water; change a third of the tank water every week."),
    ("birds.txt", "Budgies are social birds and are happier kept in pairs with plenty of perches."),
]
SPACE = [
    ("mars.txt", "Mars has two small moons, Phobos and Deimos, and the tallest volcano in the solar system."),
    ("venus.txt", "Venus is the hottest planet because its thick carbon dioxide atmosphere traps heat."),
]


# Every collection here is this administrator's (its row is written into the module's database first).
ADMIN = somebody("admin", "rag-retrieval")


def big_document(label: str, lines: int) -> bytes:
    return " ".join(
        f"The {label} archive, folio {n}: a record of harbour tolls paid in year {1700 + n}." for n in range(lines)
    ).encode()


@pytest.fixture(scope="module")
def embedders() -> EmbedderRegistry:
    """One loaded model for the module; each test gets its own service on top."""
    return EmbedderRegistry(MODEL_CACHE)


@pytest.fixture(scope="module")
def database(postgres: PostgresInstance) -> str:
    return own_database(postgres, "rag_retrieval")


@pytest.fixture
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("rag-retrieval-chroma")


async def open_service(
    database: str, chroma: Path, embedders: EmbedderRegistry, chroma_url: str | None = None
) -> tuple[RagService, object]:
    settings = Settings(  # type: ignore[call-arg]
        agent_host_api_key="k", agent_host_proxy_key="k", database_url=database, chroma_path=chroma,
        chroma_url=chroma_url,
    )  # fmt: skip
    pool = await open_pool(database, 5.0)
    await pool.wait(timeout=10)
    await store_account(pool, ADMIN)
    service = RagService(settings, pool, VectorStore(chroma, chroma_url), embedders)
    await service.start()
    return service, pool


@pytest.fixture
async def rag(database: str, chroma: Path, embedders: EmbedderRegistry) -> AsyncIterator[RagService]:
    service, pool = await open_service(database, chroma, embedders)
    yield service
    await service.close()
    await pool.close()  # type: ignore[attr-defined]


async def fresh_collection(rag: RagService, name: str, files: list[tuple[str, str]]) -> None:
    names = {c.name for c in await rag.list_collections(ADMIN)}
    if name in names:
        await rag.delete_collection(name, ADMIN)
    await rag.create_collection(CollectionCreate(name=name), ADMIN)
    uploads = [UploadedFile(f, "text/plain", bytearray(text.encode()), len(text.encode())) for f, text in files]
    result = await rag.upload(name, uploads, wait=True, person=ADMIN)
    assert {f.status for f in result.files} == {"indexed"}


async def test_hybrid_scores_are_the_reciprocal_rank_fusion_of_both_rankings(rag: RagService) -> None:
    await fresh_collection(rag, "pets", PETS)
    question = "how much exercise does a dog need"

    async def ranking(mode: str) -> list[str]:
        result = await rag.query(
            QueryRequest(query=question, collections=["pets"], mode=mode, top_k=20, min_score=-1), ADMIN
        )
        return [hit.chunk_id for hit in result.hits]

    vector, bm25 = await ranking("vector"), await ranking("bm25")
    hybrid = await rag.query(QueryRequest(query=question, collections=["pets"], top_k=20, min_score=-1), ADMIN)
    assert vector and bm25 and hybrid.hits[0].source == "dogs.txt"
    k = rag.settings.rag_rrf_k
    for hit in hybrid.hits:
        expected = sum(1 / (k + ranks.index(hit.chunk_id) + 1) for ranks in (vector, bm25) if hit.chunk_id in ranks)
        assert hit.score == pytest.approx(expected, abs=1e-5)
    assert [h.score for h in hybrid.hits] == sorted((h.score for h in hybrid.hits), reverse=True)


async def test_several_collections_merge_into_one_ranking(rag: RagService) -> None:
    await fresh_collection(rag, "pets", PETS)
    await fresh_collection(rag, "space", SPACE)
    for mode in ("vector", "hybrid"):
        result = await rag.query(
            QueryRequest(
                query="which planet has moons and which pet sleeps most",
                collections=["pets", "space"],
                mode=mode,
                top_k=6,
                min_score=-1,
            ),
            ADMIN,
        )
        assert {hit.collection for hit in result.hits} == {"pets", "space"}
        assert [hit.rank for hit in result.hits] == list(range(1, len(result.hits) + 1))
        assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
        for hit in result.hits:
            assert hit.source in dict(PETS if hit.collection == "pets" else SPACE)
    only = await rag.query(
        QueryRequest(query="planet moons", collections=["pets", "space"], filters=RagFilters(source="mars.txt")),
        ADMIN,
    )
    assert only.hits and {hit.source for hit in only.hits} == {"mars.txt"}


async def test_keyword_index_is_rebuilt_from_chroma_when_the_service_reopens(
    rag: RagService, database: str, chroma: Path, embedders: EmbedderRegistry
) -> None:
    await fresh_collection(rag, "pets", PETS)
    request = QueryRequest(query="goldfish tank water", collections=["pets"], mode="bm25", min_score=-1)
    before = [(h.chunk_id, h.bm25_score) for h in (await rag.query(request, ADMIN)).hits]
    assert before
    reopened, pool = await open_service(database, chroma, embedders)
    try:
        assert [(h.chunk_id, h.bm25_score) for h in (await reopened.query(request, ADMIN)).hits] == before
    finally:
        await reopened.close()
        await pool.close()  # type: ignore[attr-defined]


async def test_queries_during_a_job_see_a_document_whole_or_not_at_all(rag: RagService) -> None:
    await fresh_collection(rag, "harbour", [("seed.txt", "The harbour master keeps the tide tables.")])
    tolls = big_document("tolls", 150)
    tolls_file = UploadedFile("tolls.txt", "text/plain", bytearray(tolls), len(tolls))
    upload = await rag.upload("harbour", [tolls_file], wait=False, person=ADMIN)
    assert upload.job is not None
    request = QueryRequest(
        query="harbour tolls paid",
        collections=["harbour"],
        mode="vector",
        top_k=50,
        min_score=-1,
        filters=RagFilters(source="tolls.txt"),
    )
    seen_while_running: set[int] = set()
    while (await rag.job(upload.job.id, ADMIN)).status in ("queued", "running"):
        hits = (await rag.query(request, ADMIN)).hits
        if (await rag.job(upload.job.id, ADMIN)).status == "running":
            seen_while_running.add(len(hits))
        await asyncio.sleep(0.01)
    final = await rag.job(upload.job.id, ADMIN)
    chunks = final.files[0].chunks
    assert final.status == "done" and chunks is not None and 0 < chunks <= 50
    assert seen_while_running  # queries were answered while the job ran ...
    assert seen_while_running <= {0, chunks}  # ... and never saw part of the document
    assert len((await rag.query(request, ADMIN)).hits) == chunks


async def test_a_reindex_switches_generations_without_a_gap(rag: RagService) -> None:
    await fresh_collection(rag, "ledger", [("tolls.txt", big_document("customs", 120).decode())])
    (document,) = await rag.list_documents("ledger", ADMIN)
    request = QueryRequest(
        query="customs archive",
        collections=["ledger"],
        mode="hybrid",
        top_k=50,
        min_score=-1,
        filters=RagFilters(source="tolls.txt"),
    )
    job = await rag.reindex("ledger", document.id, ADMIN)
    counts: set[int] = set()
    generations: set[str] = set()
    while (await rag.job(job.id, ADMIN)).status in ("queued", "running"):
        hits = (await rag.query(request, ADMIN)).hits
        counts.add(len(hits))
        generations.update(hit.chunk_id.split(":")[1] for hit in hits)
        await asyncio.sleep(0.01)
    assert (await rag.job(job.id, ADMIN)).status == "done"
    assert counts == {document.chunks}  # always the whole document: the old generation until the new one is ready
    final = {hit.chunk_id.split(":")[1] for hit in (await rag.query(request, ADMIN)).hits}
    assert final == {"1"} and generations <= {"0", "1"}


async def test_a_chroma_server_works_like_the_embedded_store_and_its_outage_is_503(
    database: str, chroma: Path, embedders: EmbedderRegistry
) -> None:
    server, url = start_chroma_server(chroma)
    rag, pool = await open_service(database, chroma, embedders, chroma_url=url)
    try:
        await fresh_collection(rag, "remote", PETS)
        request = QueryRequest(query="how long do cats sleep", collections=["remote"])
        assert (await rag.query(request, ADMIN)).hits[0].source == "cats.txt"
        server.stop()
        with pytest.raises(VectorStoreUnavailable) as outage:
            await rag.query(request, ADMIN)
        assert outage.value.status == 503
        server.start()  # the same port and data: the store reconnects by itself
        assert (await rag.query(request, ADMIN)).hits[0].source == "cats.txt"
    finally:
        await rag.close()
        await pool.close()  # type: ignore[attr-defined]
        server.stop()
