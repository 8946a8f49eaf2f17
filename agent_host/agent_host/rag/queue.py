"""The ingestion queue: procrastinate on the genailabs database, its task, and a worker with its upkeep.

Hosts defer a job id; workers (`python -m agent_host.worker`, or the host itself with RAG_INLINE_WORKER) run it.
Procrastinate records each worker's heartbeat: a job whose worker stopped beating (killed, its machine gone) is
put back in the queue by the next upkeep round of any worker, and a job cut short by a shutdown is retried.
"""

import asyncio
import hashlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import psycopg
from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.schema import SchemaManager

from agent_host.errors import AgentHostError

log = logging.getLogger(__name__)

INGEST_TASK = "rag.ingest"
# Serialises procrastinate's schema creation between processes starting together.
SCHEMA_LOCK_ID = 0x474C_5131
# A job that fails for a reason outside its files (the database or Chroma down) is retried this often.
RETRY = RetryStrategy(max_attempts=5, exponential_wait=2)

# Runs one job: (job id, the name of the worker running it).
RunJob = Callable[[str, str], Awaitable[None]]


def queue_name(chroma_url: str | None, chroma_path: Path) -> str:
    """The queue of the vector store the jobs write to: only workers writing to that same store take them.

    Every replica and worker of a deployment shares CHROMA_URL, so they share one queue; hosts that each keep
    an embedded Chroma (a host alone, or tests running several on one database) each get a queue of their own.
    """
    where = chroma_url.rstrip("/") if chroma_url else f"file://{socket.gethostname()}{chroma_path.resolve()}"
    return "rag-" + hashlib.sha256(where.encode()).hexdigest()[:16]


def queue_app(database_url: str, pool_size: int = 4) -> App:
    """The procrastinate App with the ingest task; the task finds the job runner in the worker's context."""
    connector = PsycopgConnector(conninfo=database_url, min_size=1, max_size=pool_size, kwargs={"connect_timeout": 5})
    app = App(connector=connector)

    @app.task(name=INGEST_TASK, pass_context=True, retry=RETRY)
    async def ingest(context: JobContext, job_id: str) -> None:
        run_job: RunJob = context.additional_context["run_job"]
        await run_job(job_id, context.worker_name or "worker")

    return app


async def ensure_schema(database_url: str) -> None:
    """Creates procrastinate's tables once (its own schema file), under a lock other processes queue on."""
    async with await psycopg.AsyncConnection.connect(database_url, connect_timeout=5) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
        cursor = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        row = await cursor.fetchone()
        if row is None or not row[0]:
            await conn.execute(SchemaManager.get_schema())
            log.info("created the ingestion queue's tables (procrastinate)")


async def defer(app: App, queue: str, job_id: str) -> None:
    await app.configure_task(INGEST_TASK, queue=queue).defer_async(job_id=job_id)


def worker_name(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


async def run_worker(
    app: App,
    queue: str,
    run_job: RunJob,
    sweep: Callable[[], Awaitable[None]],
    *,
    name: str,
    concurrency: int,
    heartbeat: float,
    stalled: float,
    shutdown_grace: float,
) -> None:
    """Runs the queue's worker and its upkeep until cancelled (a stop lets running jobs end within the grace)."""
    upkeep = asyncio.create_task(_upkeep(app, queue, sweep, heartbeat, stalled), name="rag-upkeep")
    try:
        await app.run_worker_async(
            queues=[queue],
            name=name,
            concurrency=concurrency,
            install_signal_handlers=False,
            update_heartbeat_interval=heartbeat,
            stalled_worker_timeout=stalled,
            fetch_job_polling_interval=min(heartbeat, 2.0),
            shutdown_graceful_timeout=shutdown_grace,
            delete_jobs="successful",
            additional_context={"run_job": run_job},
        )
    finally:
        upkeep.cancel()
        with suppress(asyncio.CancelledError):
            await upkeep


async def _upkeep(app: App, queue: str, sweep: Callable[[], Awaitable[None]], every: float, stalled: float) -> None:
    """Every round: requeue the jobs of workers that stopped beating, then sweep what ended jobs left behind."""
    while True:
        await asyncio.sleep(every)
        try:
            await requeue_stalled(app, queue, stalled)
            await sweep()
        except (AgentHostError, psycopg.Error, OSError) as exc:  # the next round tries again
            log.warning("ingestion upkeep skipped a round: %s", exc)


async def requeue_stalled(app: App, queue: str, stalled: float) -> list[int]:
    """Puts back in the queue the running jobs of workers silent for `stalled` seconds; their ids."""
    manager = app.job_manager
    requeued = []
    for job in await manager.get_stalled_jobs(queue=queue, seconds_since_heartbeat=stalled):
        try:
            await manager.retry_job(job)
        except Exception as exc:  # another worker's upkeep got there first
            log.debug("stalled job %s not requeued: %s", job.id, exc)
            continue
        log.warning("requeued ingestion job %s: its worker stopped sending heartbeats", _job_arg(job.task_kwargs))
        assert job.id is not None
        requeued.append(job.id)
    await manager.prune_stalled_workers(seconds_since_heartbeat=stalled)
    return requeued


def _job_arg(kwargs: dict[str, Any]) -> str:
    return str(kwargs.get("job_id", "?"))
