"""Uploads and re-indexes become queued jobs: taken in under a lease, recorded in PostgreSQL, handed to the queue."""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress

import psycopg
from procrastinate import App
from procrastinate.exceptions import ConnectorException
from psycopg_pool import PoolTimeout

from agent_host.config import Settings
from agent_host.errors import AgentHostError, DatabaseUnavailable
from agent_host.rag.jobs import JobStore
from agent_host.rag.multipart import UploadedFile
from agent_host.rag.parsing import ParserPool
from agent_host.rag.queue import defer
from agent_host.rag.registry import Registry
from agent_host.rag.schemas import JobPublic, UploadResult
from agent_host.rag.uploads import accept_files, check_count


class Intake:
    """Where a job starts. Its documents are registered under the job while the host holds its lease, so a host
    dying mid-upload leaves nothing that outlives the lease; once deferred, the job is the queue's."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        jobs: JobStore,
        parsers: ParserPool,
        queue: tuple[App, str],
        sweep: Callable[[], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.jobs = jobs
        self.parsers = parsers
        self.queue, self.queue_name = queue
        self.sweep = sweep

    async def upload(self, collection: str, files: list[UploadedFile], wait: bool, owner: str) -> UploadResult:
        """Per-file results; the accepted files are indexed by one job (awaited when `wait`)."""
        check_count(self.settings, files)
        lease = self.settings.rag_accept_lease_seconds
        job_id = await self.jobs.open(collection, "ingest", owner, lease)
        try:
            results, accepted = await accept_files(
                self.registry,
                self.settings,
                collection,
                files,
                self.parsers.parse,
                job_id,
                lambda: self.jobs.renew(job_id, lease),
            )
            if not accepted:
                await self.jobs.discard(job_id)
                return UploadResult(job=None, files=results)
            await self.jobs.add_files(job_id, [(r.document_id or "", r.filename, 0) for r in accepted])
            await self._enqueue(job_id)
        except BaseException:
            await asyncio.shield(self._abandon(job_id))
            raise
        if not wait:
            return UploadResult(job=await self.jobs.public(job_id, owner), files=results)
        job = await self._wait(job_id, owner)
        outcome = {file.document_id: file for file in job.files}
        return UploadResult(
            job=job, files=[outcome.get(r.document_id, r) if r.status == "queued" else r for r in results]
        )

    async def reindex(self, collection: str, document_id: str, owner: str) -> JobPublic:
        """Re-chunks and re-embeds from the stored text; the old generation serves queries until the new is ready."""
        stored = await self.registry.get_document(collection, document_id)
        job_id = await self.jobs.open(collection, "reindex", owner, self.settings.rag_accept_lease_seconds)
        try:
            await self.jobs.add_files(job_id, [(stored.public.id, stored.public.filename, None)])
            await self._enqueue(job_id)
        except BaseException:
            await asyncio.shield(self._abandon(job_id))
            raise
        return await self.jobs.public(job_id, owner)

    async def _enqueue(self, job_id: str) -> None:
        try:
            await defer(self.queue, self.queue_name, job_id)
        except (psycopg.Error, OSError, PoolTimeout, ConnectorException) as exc:
            raise DatabaseUnavailable("the ingestion queue's database is unreachable") from exc
        await self.jobs.mark_queued(job_id)

    async def _abandon(self, job_id: str) -> None:
        """An upload that failed half-way: its job ends now, and the sweep takes back its documents."""
        with suppress(AgentHostError):
            await self.jobs.finish(job_id, error="the upload failed before its job was queued")
            await self.sweep()

    async def _wait(self, job_id: str, owner: str) -> JobPublic:
        pause = 0.05
        while await self.jobs.status(job_id) not in ("done", "failed", None):
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 0.5)
        return await self.jobs.public(job_id, owner)
