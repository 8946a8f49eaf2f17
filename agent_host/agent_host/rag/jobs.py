"""Ingestion jobs in memory: per-file work and results, progress, and expiry of finished jobs."""

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from agent_host.errors import AgentHostError, JobNotFound
from agent_host.rag.chunking import Chunk
from agent_host.rag.loaders import LoadedDocument
from agent_host.rag.schemas import FileProblem, FileResult, JobPublic

# Finished jobs stay readable this long (GET /rag/jobs/{id}), then they are forgotten.
JOB_TTL_SECONDS = 3600.0


@dataclass
class FileWork:
    """One document of a job; `result` is the FileResult the upload answer shares."""

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

    @property
    def fraction(self) -> float:
        if self.finished:
            return 1.0
        if not self.chunks:
            return 0.0
        return self.written / len(self.chunks)

    def fail(self, error: AgentHostError | Exception) -> None:
        if isinstance(error, AgentHostError):
            problem = FileProblem(type=error.type, message=error.message, status=error.status)
        else:
            problem = FileProblem(type="indexing_failed", message=f"{type(error).__name__}: {error}", status=500)
        self.result.status, self.result.error, self.result.chunks = "failed", problem, None
        self.finished = True


@dataclass
class Job:
    collection: str
    kind: Literal["ingest", "reindex"]
    files: list[FileWork]
    # The account id of the person who started it: only they can follow it.
    owner: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: Literal["queued", "running", "done", "failed"] = "queued"
    error: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    finished_monotonic: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def finish(self) -> None:
        failed = [work for work in self.files if work.result.status == "failed"]
        if failed and len(failed) == len(self.files):
            self.status = "failed"
            first = failed[0].result.error
            self.error = f"every file failed; first: {first.message if first else 'unknown error'}"
        else:
            self.status = "done"
            if failed:
                self.error = f"{len(failed)} of {len(self.files)} files failed"
        self.finished_at = datetime.now(UTC)
        self.finished_monotonic = time.monotonic()
        self.done.set()

    def public(self) -> JobPublic:
        total = len(self.files)
        progress = 1.0 if self.status in ("done", "failed") else sum(w.fraction for w in self.files) / max(total, 1)
        return JobPublic(
            id=self.id,
            collection=self.collection,
            kind=self.kind,
            status=self.status,
            files_total=total,
            files_done=sum(1 for work in self.files if work.finished),
            chunks_total=sum(len(work.chunks or ()) for work in self.files),
            chunks_done=sum(work.written for work in self.files),
            progress=min(1.0, progress),
            files=[work.result.model_copy() for work in self.files],
            error=self.error,
            created_at=self.created_at,
            finished_at=self.finished_at,
        )


class JobBoard:
    """Jobs by id, each readable by its owner only; finished ones expire after JOB_TTL_SECONDS."""

    def __init__(self, ttl: float = JOB_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._jobs: dict[str, Job] = {}

    def add(self, job: Job) -> None:
        self._expire()
        self._jobs[job.id] = job

    def get(self, job_id: str, owner: str) -> Job:
        """Someone else's job is not found, exactly like one that never existed."""
        self._expire()
        job = self._jobs.get(job_id)
        if job is None or job.owner != owner:
            raise JobNotFound(f"job {job_id} does not exist (finished jobs are kept for an hour)")
        return job

    def _expire(self) -> None:
        now = time.monotonic()
        for job_id in [
            job.id
            for job in self._jobs.values()
            if job.finished_monotonic is not None and now - job.finished_monotonic > self.ttl
        ]:
            del self._jobs[job_id]
