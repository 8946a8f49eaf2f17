"""Ingestion jobs in PostgreSQL: what a job holds, its progress and outcome, readable through every replica.

A host accepts an upload under a lease (status 'accepting'), then hands the job to the queue (rag/queue.py);
a worker runs it (rag/ingest.py) and writes each file's progress here. Finished jobs are kept JOB_TTL_SECONDS.
"""

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from psycopg.types.json import Jsonb

from agent_host.db import PgStore
from agent_host.errors import AgentHostError, JobNotFound
from agent_host.rag.chunking import Chunk
from agent_host.rag.loaders import LoadedDocument
from agent_host.rag.schemas import FileProblem, FileResult, JobPublic

# Finished jobs stay readable this long (GET /rag/jobs/{id}), then they are deleted by the next sweep.
JOB_TTL_SECONDS = 3600

JobKind = Literal["ingest", "reindex"]


@dataclass
class FileWork:
    """One document of a running job, in the worker's memory; `result` is what the job reports for it."""

    position: int
    result: FileResult
    document_id: str
    document: LoadedDocument
    # The generation this job writes; None for a re-index until it has reserved one.
    generation: int | None = 0
    chunks: list[Chunk] | None = None
    written: int = 0
    finished: bool = False

    @property
    def gen(self) -> int:
        """The generation being written (a re-index has reserved it by the time chunks exist)."""
        if self.generation is None:
            raise RuntimeError(f"{self.document_id}: no generation reserved")
        return self.generation

    def fail(self, error: AgentHostError | Exception) -> FileProblem:
        if isinstance(error, AgentHostError):
            problem = FileProblem(type=error.type, message=error.message, status=error.status)
        else:
            problem = FileProblem(type="indexing_failed", message=f"{type(error).__name__}: {error}", status=500)
        self.result.status, self.result.error, self.result.chunks = "failed", problem, None
        self.finished = True
        return problem


@dataclass(frozen=True)
class QueuedFile:
    """A file of a job as stored: what a worker needs to (re)start it."""

    position: int
    document_id: str
    filename: str
    status: str
    generation: int | None


@dataclass(frozen=True)
class JobRun:
    """A job a worker has just taken: its attempt number and the files still to do."""

    id: str
    collection: str
    kind: JobKind
    attempts: int
    files: list[QueuedFile]


class JobStore(PgStore):
    """All job SQL; a database outage surfaces as DatabaseUnavailable."""

    unavailable = "the RAG job database is unreachable"

    async def open(self, collection: str, kind: JobKind, owner: str, lease_seconds: float) -> str:
        """A new job in 'accepting', held by the caller's lease."""
        job_id = uuid.uuid4()
        async with self.connection() as conn:
            await conn.execute(
                "INSERT INTO rag_jobs (id, collection, kind, owner_id, status, lease_until) "
                "VALUES (%s, %s, %s, %s, 'accepting', now() + make_interval(secs => %s))",
                (job_id, collection, kind, uuid.UUID(owner), lease_seconds),
            )
        return str(job_id)

    async def renew(self, job_id: str, lease_seconds: float) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "UPDATE rag_jobs SET lease_until = now() + make_interval(secs => %s) "
                "WHERE id = %s AND status = 'accepting'",
                (lease_seconds, uuid.UUID(job_id)),
            )

    async def add_files(self, job_id: str, files: list[tuple[str, str, int | None]]) -> None:
        """The job's documents as (document id, filename, generation), in upload order."""
        async with self.connection() as conn:
            cursor = conn.cursor()
            await cursor.executemany(
                "INSERT INTO rag_job_files (job_id, position, document_id, filename, status, generation) "
                "VALUES (%s, %s, %s, %s, 'queued', %s)",
                [
                    (uuid.UUID(job_id), position, uuid.UUID(document_id), filename, generation)
                    for position, (document_id, filename, generation) in enumerate(files)
                ],
            )

    async def mark_queued(self, job_id: str) -> None:
        async with self.connection() as conn:
            await conn.execute(
                "UPDATE rag_jobs SET status = 'queued', lease_until = NULL WHERE id = %s AND status = 'accepting'",
                (uuid.UUID(job_id),),
            )

    async def discard(self, job_id: str) -> None:
        """A job that got no file to index never existed."""
        async with self.connection() as conn:
            await conn.execute("DELETE FROM rag_jobs WHERE id = %s", (uuid.UUID(job_id),))

    async def start(self, job_id: str, worker: str) -> JobRun | None:
        """`worker` takes the job for a (new) attempt; None when it has ended or was reclaimed meanwhile."""
        key = _parse_id(job_id)
        async with self.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "UPDATE rag_jobs SET status = 'running', lease_until = NULL, attempts = attempts + 1, worker = %s "
                "WHERE id = %s AND status IN ('accepting', 'queued', 'running') RETURNING collection, kind, attempts",
                (worker, key),
            )
            job = await cursor.fetchone()
            if job is None:
                return None
            cursor = await conn.execute(
                "SELECT position, document_id::text AS document_id, filename, status, generation "
                "FROM rag_job_files WHERE job_id = %s ORDER BY position",
                (key,),
            )
            files = [QueuedFile(**row) for row in await cursor.fetchall()]
        return JobRun(job_id, job["collection"], job["kind"], job["attempts"], files)

    async def reserve(self, job_id: str, position: int, generation: int) -> None:
        """Records the generation a re-index reserved, so a retry writes the same one."""
        await self._file(job_id, position, "generation = %s", generation)

    async def chunked(self, job_id: str, position: int, chunks: int) -> None:
        await self._file(job_id, position, "chunks = %s, chunks_done = 0", chunks)

    async def progress(self, job_id: str, done: list[tuple[int, int]]) -> None:
        """Chunks written so far, as (position, chunks done) pairs."""
        async with self.connection() as conn:
            cursor = conn.cursor()
            await cursor.executemany(
                "UPDATE rag_job_files SET chunks_done = %s WHERE job_id = %s AND position = %s",
                [(count, uuid.UUID(job_id), position) for position, count in done],
            )

    async def indexed(self, job_id: str, position: int, chunks: int) -> None:
        await self._file(job_id, position, "status = 'indexed', chunks = %s, chunks_done = chunks", chunks)

    async def failed(self, job_id: str, position: int, problem: FileProblem) -> None:
        await self._file(job_id, position, "status = 'failed', error = %s", Jsonb(problem.model_dump()))

    async def _file(self, job_id: str, position: int, assignments: str, value: Any) -> None:
        async with self.connection() as conn:
            await conn.execute(
                f"UPDATE rag_job_files SET {assignments} WHERE job_id = %s AND position = %s",  # type: ignore[arg-type]
                (value, uuid.UUID(job_id), position),
            )

    async def finish(self, job_id: str, error: str | None = None) -> None:
        """Done unless every file failed; files still queued (a job given up) fail with `error`."""
        key = uuid.UUID(job_id)
        async with self.connection() as conn, conn.transaction():
            if error is not None:
                problem = Jsonb({"type": "indexing_failed", "message": error, "status": 500})
                await conn.execute(
                    "UPDATE rag_job_files SET status = 'failed', error = %s WHERE job_id = %s AND status = 'queued'",
                    (problem, key),
                )
            await conn.execute(
                """UPDATE rag_jobs j SET finished_at = now(), lease_until = NULL,
                       status = CASE WHEN f.failed = f.total THEN 'failed' ELSE 'done' END,
                       error = CASE WHEN f.failed = 0 THEN NULL
                                    WHEN f.failed = f.total THEN 'every file failed; first: ' || f.first_error
                                    ELSE f.failed || ' of ' || f.total || ' files failed' END
                   FROM (SELECT count(*) AS total, count(*) FILTER (WHERE status = 'failed') AS failed,
                                (array_agg(error ->> 'message' ORDER BY position)
                                    FILTER (WHERE status = 'failed'))[1] AS first_error
                           FROM rag_job_files WHERE job_id = %s) f
                  WHERE j.id = %s AND j.finished_at IS NULL""",
                (key, key),
            )

    async def public(self, job_id: str, owner: str | None) -> JobPublic:
        """Someone else's job (owner given) is not found, exactly like one that never existed or expired."""
        key = _parse_id(job_id)
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT id::text AS id, collection, kind, status, error, created_at, finished_at, owner_id::text "
                "AS owner FROM rag_jobs WHERE id = %s AND (finished_at IS NULL OR finished_at > now() - "
                "make_interval(secs => %s))",
                (key, JOB_TTL_SECONDS),
            )
            job = await cursor.fetchone()
            if job is None or (owner is not None and job["owner"] != owner):
                raise JobNotFound(f"job {job_id} does not exist (finished jobs are kept for an hour)")
            cursor = await conn.execute(
                "SELECT document_id::text AS document_id, filename, status, chunks, chunks_done, error "
                "FROM rag_job_files WHERE job_id = %s ORDER BY position",
                (key,),
            )
            files = await cursor.fetchall()
        return _public(job, files)

    async def status(self, job_id: str) -> str | None:
        async with self.connection() as conn:
            cursor = await conn.execute("SELECT status FROM rag_jobs WHERE id = %s", (_parse_id(job_id),))
            row = await cursor.fetchone()
        return None if row is None else str(row["status"])

    async def expire_accepting(self) -> list[str]:
        """Fails the jobs whose accepting host's lease ran out (it died before queueing them)."""
        async with self.connection() as conn:
            cursor = await conn.execute(
                "UPDATE rag_jobs SET status = 'failed', finished_at = now(), lease_until = NULL, "
                "error = 'the host taking this upload in stopped before it was queued; upload the files again' "
                "WHERE status = 'accepting' AND lease_until < now() RETURNING id::text AS id"
            )
            return [row["id"] for row in await cursor.fetchall()]

    async def delete_expired(self) -> int:
        async with self.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM rag_jobs WHERE finished_at < now() - make_interval(secs => %s)", (JOB_TTL_SECONDS,)
            )
            return cursor.rowcount


def _public(job: dict[str, Any], files: list[dict[str, Any]]) -> JobPublic:
    results = []
    fractions = []
    for row in files:
        finished = row["status"] != "queued"
        results.append(
            FileResult(
                filename=row["filename"],
                status=row["status"],
                document_id=row["document_id"],
                chunks=row["chunks"] if row["status"] == "indexed" else None,
                error=FileProblem(**row["error"]) if row["error"] else None,
            )
        )
        fractions.append(1.0 if finished else (row["chunks_done"] / row["chunks"] if row["chunks"] else 0.0))
    status = job["status"]
    finished_job = status in ("done", "failed")
    return JobPublic(
        id=job["id"],
        collection=job["collection"],
        kind=job["kind"],
        status="queued" if status == "accepting" else status,
        files_total=len(files),
        files_done=sum(1 for row in files if row["status"] != "queued"),
        chunks_total=sum(row["chunks"] or 0 for row in files),
        chunks_done=sum(row["chunks"] if row["status"] == "indexed" else row["chunks_done"] for row in files),
        progress=1.0 if finished_job else min(1.0, sum(fractions) / max(len(files), 1)),
        files=results,
        error=job["error"],
        created_at=job["created_at"],
        finished_at=job["finished_at"],
    )


def _parse_id(job_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(job_id)
    except ValueError:
        raise JobNotFound(f"job {job_id} does not exist (finished jobs are kept for an hour)") from None
