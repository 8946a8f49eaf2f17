"""Checks each uploaded file (size, type, duplicate, readable) and registers the accepted ones as 'indexing'."""

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable

from agent_host.config import Settings
from agent_host.errors import (
    ArchiveTooLarge,
    DocumentTooLarge,
    ParseTimeout,
    TooManyFiles,
    UnreadableDocument,
    UnsupportedDocumentType,
)
from agent_host.rag.jobs import FileWork
from agent_host.rag.loaders import LoadedDocument, Section, detect_type, safe_filename
from agent_host.rag.multipart import UploadedFile
from agent_host.rag.registry import NewDocument, Registry, StoredDocument
from agent_host.rag.schemas import DocumentType, FileProblem, FileResult

log = logging.getLogger(__name__)

# A file with one of these problems is rejected on its own; anything else (the database is down) fails the request.
FILE_PROBLEMS = (DocumentTooLarge, UnsupportedDocumentType, UnreadableDocument, ParseTimeout, ArchiveTooLarge)
# Parses one file (in a worker process: rag/parsing.py).
Parse = Callable[[str, bytes, DocumentType], Awaitable[LoadedDocument]]


def check_count(settings: Settings, files: list[UploadedFile]) -> None:
    if len(files) > settings.rag_max_files:
        raise TooManyFiles(f"{len(files)} files in one upload; the limit is {settings.rag_max_files} (RAG_MAX_FILES)")


async def accept_files(
    registry: Registry,
    settings: Settings,
    collection: str,
    files: list[UploadedFile],
    parse: Parse,
    job_id: str,
    renew: Callable[[], Awaitable[None]],
) -> tuple[list[FileResult], list[FileResult]]:
    """A result per file in upload order, and those of the files registered for job `job_id` to index.

    `renew` runs before each file, so the job's accepting lease outlasts a long upload but not a dead host.
    """
    check_count(settings, files)
    results: list[FileResult] = []
    accepted: list[FileResult] = []
    for upload in files:
        await renew()
        filename = safe_filename(upload.filename)
        result = FileResult(filename=filename, status="queued")
        results.append(result)
        try:
            if await _accept(registry, settings, collection, filename, upload, parse, result, job_id):
                accepted.append(result)
        except FILE_PROBLEMS as exc:
            result.status = "rejected"
            result.error = FileProblem(type=exc.type, message=exc.message, status=exc.status)
    return results, accepted


async def _accept(
    registry: Registry,
    settings: Settings,
    collection: str,
    filename: str,
    upload: UploadedFile,
    parse: Parse,
    result: FileResult,
    job_id: str,
) -> bool:
    if upload.oversized or upload.size > settings.rag_max_file_bytes:
        raise DocumentTooLarge(
            f"{filename} is {upload.size} bytes; the limit is {settings.rag_max_file_bytes} (RAG_MAX_FILE_BYTES)"
        )
    doc_type = detect_type(filename, upload.content_type)
    data = bytes(upload.data)
    upload.data = bytearray()  # one copy in memory, not two
    digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    # Checked before parsing so a re-upload costs nothing; the UNIQUE constraint decides races.
    existing = await registry.find_by_hash(collection, digest)
    if existing is None:
        document = await parse(filename, data, doc_type)
        new = NewDocument(
            collection=collection,
            filename=filename,
            type=doc_type,
            size=len(data),
            sha256=digest,
            pages=document.pages,
            sections=[dataclasses.asdict(section) for section in document.sections],
        )
        document_id = await registry.insert_document(new, job_id)
        if document_id is not None:
            result.document_id = document_id
            return True
        existing = await registry.find_by_hash(collection, digest)
    result.status, result.document_id = "duplicate", existing
    return False


def stored_document(stored: StoredDocument, position: int) -> FileWork:
    """Work for indexing a document from the sections kept in the registry (no original file needed)."""
    public = stored.public
    document = LoadedDocument(
        filename=public.filename,
        type=public.type,
        sections=[Section(**section) for section in stored.sections],
        pages=public.pages,
    )
    result = FileResult(filename=public.filename, status="queued", document_id=public.id)
    return FileWork(position, result, public.id, document, generation=None)
