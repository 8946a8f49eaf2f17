"""`python -m agent_host.worker`: an ingestion worker, a process of its own that runs the queue's RAG jobs.

It reads the agent host's settings (agent_host/.env), needs the genailabs database and the Chroma server the hosts
use (CHROMA_URL), and serves `GET /health` (alive) and `GET /health/ready` (the database answers and the queue's
worker runs) on RAG_WORKER_HOST:RAG_WORKER_PORT. SIGTERM lets running jobs end within RAG_WORKER_SHUTDOWN_SECONDS,
then hands them back to the queue; a worker killed outright is noticed by the others through its heartbeat.
"""

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator

import psycopg
import uvicorn
from pydantic import SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agent_host.__main__ import embedding_model_problem, port_problem, setting_problem
from agent_host.config import Settings
from agent_host.errors import AgentHostError
from agent_host.logs import configure_logging
from agent_host.rag.embeddings import Embedder, EmbedderRegistry
from agent_host.rag.ingest import Ingestor
from agent_host.rag.jobs import JobStore
from agent_host.rag.queue import ensure_schema, queue_app, queue_name, run_worker, worker_name
from agent_host.rag.registry import Registry
from agent_host.rag.store import VectorStore
from agent_host.rag.sweep import sweep
from agent_host.sessions.store import open_pool

log = logging.getLogger("agent_host.worker")


def fail(message: str) -> int:
    print(f"rag worker: {message}", file=sys.stderr)
    return 1


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the worker decides how it stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def health_app(worker: asyncio.Task[None], database_url: str) -> Starlette:
    async def alive(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        if worker.done():
            return JSONResponse({"status": "stopped", "detail": "the queue worker has stopped"}, 503)
        try:
            async with await psycopg.AsyncConnection.connect(database_url, connect_timeout=2) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, OSError):
            return JSONResponse({"status": "unavailable", "detail": "the database is unreachable"}, 503)
        return JSONResponse({"status": "ready"})

    return Starlette(routes=[Route("/health", alive), Route("/health/ready", ready)])


async def serve(settings: Settings) -> int:
    database_url = settings.database_url.get_secret_value()
    try:
        await ensure_schema(database_url)
    except (psycopg.Error, OSError) as exc:
        return fail(f"the database is unreachable ({type(exc).__name__}); is PostgreSQL up and DATABASE_URL right?")
    store = VectorStore(settings.chroma_path, settings.chroma_url)
    try:
        await asyncio.to_thread(store.ping)
    except AgentHostError as exc:
        return fail(exc.message)
    if settings.chroma_url is None:
        log.warning("CHROMA_URL is not set: this worker writes its own Chroma files, which only it can read")
    pool = await open_pool(database_url, settings.db_timeout)
    registry, jobs = Registry(pool), JobStore(pool)
    embedders = EmbedderRegistry(settings.model_cache_dir)

    async def embedder(name: str) -> Embedder:
        return await asyncio.to_thread(embedders.get, name)

    ingestor = Ingestor(registry, jobs, store, embedder)
    queue = queue_app(database_url, pool_size=settings.rag_worker_concurrency + 2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with queue.open_async():
        await sweep(registry, jobs, store)
        await asyncio.to_thread(embedders.get, settings.embedding_model)  # loaded before the first job
        name = worker_name("worker")
        worker = asyncio.create_task(
            run_worker(
                queue,
                queue_name(settings.chroma_url, settings.chroma_path),
                ingestor.run_job,
                lambda: sweep(registry, jobs, store),
                name=name,
                concurrency=settings.rag_worker_concurrency,
                heartbeat=settings.rag_worker_heartbeat_seconds,
                stalled=settings.rag_worker_stalled_seconds,
                shutdown_grace=settings.rag_worker_shutdown_seconds,
            ),
            name="rag-worker",
        )
        config = uvicorn.Config(
            health_app(worker, database_url),
            host=settings.rag_worker_host,
            port=settings.rag_worker_port,
            access_log=False,
            log_config=None,
            lifespan="off",
        )
        server = _QuietServer(config)
        health = asyncio.create_task(server.serve(), name="rag-worker-health")
        log.info("ingestion worker %s ready; health on %s:%d", name, settings.rag_worker_host, settings.rag_worker_port)
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
        crashed = worker.done() and not worker.cancelled() and worker.exception() is not None
        worker.cancel()  # running jobs get RAG_WORKER_SHUTDOWN_SECONDS, then go back to the queue
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        server.should_exit = True
        await health
        stopper.cancel()
    await pool.close()
    if crashed:
        log.error("the queue worker stopped: %r", worker.exception())
        return 1
    return 0


def worker_settings() -> Settings:
    """The host's settings without its keys: a worker calls no model and serves no person, so it holds neither."""
    return Settings(agent_host_api_key=SecretStr("unused"), agent_host_proxy_key=SecretStr("unused"))


def main() -> int:
    try:
        settings = worker_settings()
    except ValidationError as exc:
        return fail(setting_problem(exc))
    problem = port_problem(settings.rag_worker_host, settings.rag_worker_port) if settings.rag_worker_port else None
    if problem is not None:
        return fail(problem)
    if (problem := embedding_model_problem()) is not None:
        return fail(problem)
    configure_logging(settings.log_level)
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
