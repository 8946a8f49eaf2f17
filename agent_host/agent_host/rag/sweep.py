"""Reclaiming what ended jobs left behind: half-written documents and their chunks, and expired job records.

Only work nobody owns any more is touched: a document of a job that has ended, or of a host whose accepting
lease ran out. A job still queued or running is the queue's (a stalled one is retried, not swept), so a replica
starting during another's ingestion removes nothing.
"""

import asyncio
import logging

from agent_host.errors import AgentHostError
from agent_host.rag.jobs import JobStore
from agent_host.rag.registry import Registry
from agent_host.rag.store import VectorStore

log = logging.getLogger(__name__)


async def sweep(registry: Registry, jobs: JobStore, store: VectorStore) -> None:
    for job_id in await jobs.expire_accepting():
        log.warning("ingestion job %s reclaimed: its host stopped while taking the upload in", job_id)
    for leftover in await registry.leftovers():
        try:
            await asyncio.to_thread(
                store.delete_document, leftover.collection, leftover.document_id, leftover.generation
            )
        except AgentHostError as exc:  # Chroma is down: the row stays for the next sweep
            log.warning("could not remove the chunks of %s: %s", leftover.document_id, exc.message)
            continue
        if leftover.first_index:
            await registry.remove_document(leftover.document_id)
        else:
            await registry.abort_reindex(leftover.document_id)
        log.info("removed half-indexed document %s from %r", leftover.document_id, leftover.collection)
    await jobs.delete_expired()
