"""Uploaded files parsed in worker processes: a hostile file costs a worker killed at the time limit, not the host.

Parsing (pypdf, python-docx, lxml, charset detection) is CPU-bound Python and C that holds the GIL and cannot be
interrupted from a thread; a process can be killed. Workers are spawned (no fork of a threaded host), kept between
files, and replaced when one is killed or dies.
"""

import asyncio
import io
import logging
import multiprocessing
import resource
import zipfile
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from agent_host.errors import (
    AgentHostError,
    ArchiveTooLarge,
    ParseTimeout,
    UnreadableDocument,
    UnsupportedDocumentType,
)
from agent_host.rag.loaders import LoadedDocument, load_document
from agent_host.rag.schemas import DocumentType

log = logging.getLogger(__name__)

# The errors a loader raises on purpose cross the process boundary by class name.
FILE_ERRORS: dict[str, type[AgentHostError]] = {
    cls.__name__: cls for cls in (UnreadableDocument, UnsupportedDocumentType, ArchiveTooLarge)
}
# A fresh worker imports the loaders before its first file: that is not counted in the parse time limit.
START_TIMEOUT = 60.0
# Members of a zip-based file (DOCX), and the size under which a high compression ratio does no harm.
MAX_ARCHIVE_MEMBERS = 10_000
RATIO_FLOOR_BYTES = 1_000_000


@dataclass(frozen=True)
class ArchiveLimits:
    """What a zip-based file may unpack to: total bytes, and total over packed size."""

    max_bytes: int = 100_000_000
    max_ratio: float = 100.0


@dataclass(frozen=True)
class ParseLimits:
    seconds: float = 60.0
    memory_bytes: int = 2_000_000_000
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)


def check_archive(filename: str, data: bytes, limits: ArchiveLimits) -> None:
    """Refuses a zip bomb from the zip's directory alone, before anything is unpacked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise UnreadableDocument(f"{filename} is not a readable Word document: {exc}") from exc
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ArchiveTooLarge(f"{filename} holds {len(members)} files; the limit is {MAX_ARCHIVE_MEMBERS}")
    unpacked = sum(member.file_size for member in members)
    if unpacked > limits.max_bytes:
        raise ArchiveTooLarge(
            f"{filename} unpacks to {unpacked} bytes; the limit is {limits.max_bytes} (RAG_MAX_UNZIPPED_BYTES)"
        )
    ratio = unpacked / max(1, sum(member.compress_size for member in members))
    if unpacked > RATIO_FLOOR_BYTES and ratio > limits.max_ratio:
        raise ArchiveTooLarge(
            f"{filename} is compressed {ratio:.0f}:1 (a zip bomb?); "
            f"the limit is {limits.max_ratio:g}:1 (RAG_MAX_ZIP_RATIO)"
        )


def parse_file(filename: str, data: bytes, doc_type: DocumentType, archive: ArchiveLimits) -> LoadedDocument:
    """What a worker runs for one file: the zip directory checked first, then the loader."""
    if doc_type == "docx":
        check_archive(filename, data, archive)
    return load_document(filename, data, doc_type)


def _serve(conn: Connection, memory_bytes: int) -> None:
    """A worker's loop: ("ok", document), ("error", class name, message) or ("failed", exception name)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    conn.send(("ready",))
    while True:
        try:
            filename, data, doc_type, archive = conn.recv()
        except EOFError:  # the host closed the pipe
            return
        answer: tuple[Any, ...]
        try:
            answer = ("ok", parse_file(filename, data, doc_type, archive))
        except AgentHostError as exc:
            answer = ("error", type(exc).__name__, exc.message)
        except MemoryError:
            answer = ("error", "UnreadableDocument", f"{filename} needs too much memory to parse")
        except Exception as exc:  # a loader library choking on a malformed file is still the file's problem
            answer = ("failed", type(exc).__name__)
        del data
        conn.send(answer)


class _Overrun(Exception):
    pass


class _Worker:
    """One spawned parser process and its end of the pipe; `parse` blocks, so it runs in a thread."""

    def __init__(self, memory_bytes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, memory_bytes), name="rag-parser", daemon=True)
        self.process.start()
        child.close()
        self.ready = False

    def parse(self, request: tuple[Any, ...], seconds: float) -> tuple[Any, ...]:
        if not self.ready:
            if not self.conn.poll(START_TIMEOUT):
                raise EOFError("the parser process did not start")
            self.conn.recv()
            self.ready = True
        self.conn.send(request)
        if not self.conn.poll(seconds):
            raise _Overrun
        answer: tuple[Any, ...] = self.conn.recv()
        return answer

    def kill(self) -> None:
        """The pipe is left to the thread that may still be reading it: the dead process gives it an EOF."""
        self.process.kill()
        self.process.join(5)


class ParserPool:
    """Up to `size` files parsed at once, each in a worker killed when it runs over `limits.seconds`."""

    def __init__(self, size: int, limits: ParseLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []
        self._closed = False

    async def parse(self, filename: str, data: bytes, doc_type: DocumentType) -> LoadedDocument:
        async with self._slots:
            worker = self._idle.pop() if self._idle else None
            if worker is None or not worker.process.is_alive():  # a worker can die idle (the OOM killer)
                worker = await asyncio.to_thread(_Worker, self.limits.memory_bytes)
            healthy = False
            try:
                request = (filename, data, doc_type, self.limits.archive)
                answer = await asyncio.to_thread(worker.parse, request, self.limits.seconds)
                healthy = True
            except _Overrun:
                log.warning("parsing %s ran over %g s: its worker is killed", filename, self.limits.seconds)
                raise ParseTimeout(
                    f"{filename} took longer than {self.limits.seconds:g} s to parse (RAG_PARSE_TIMEOUT): refused"
                ) from None
            except (OSError, EOFError) as exc:
                log.warning("the parser of %s died: %r (exit code %s)", filename, exc, worker.process.exitcode)
                raise UnreadableDocument(f"{filename} could not be read: its parser process died") from exc
            finally:
                if healthy and not self._closed:
                    self._idle.append(worker)
                else:
                    await asyncio.to_thread(worker.kill)
        return _document(filename, answer)

    def close(self) -> None:
        self._closed = True
        for worker in self._idle:
            worker.kill()
        self._idle.clear()


def _document(filename: str, answer: tuple[Any, ...]) -> LoadedDocument:
    if answer[0] == "ok":
        document: LoadedDocument = answer[1]
        return document
    if answer[0] == "error":
        raise FILE_ERRORS.get(answer[1], UnreadableDocument)(answer[2])
    log.warning("loading %s failed: %s", filename, answer[1])
    raise UnreadableDocument(f"{filename} could not be read: {answer[1]}")
