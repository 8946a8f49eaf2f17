"""Uploaded files to text sections, page or heading path kept: pypdf, python-docx, BeautifulSoup, a Markdown scan."""

import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePosixPath

from agent_host.errors import UnreadableDocument, UnsupportedDocumentType
from agent_host.rag.outlines import Part, docx_parts, html_parts, markdown_parts
from agent_host.rag.schemas import DocumentType

SEPARATOR = "\n\n"
EXTENSIONS: dict[str, DocumentType] = {
    ".pdf": "pdf",
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".docx": "docx",
}
# Only consulted when the file name has no extension at all.
CONTENT_TYPES: dict[str, DocumentType] = {
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
# Share of control characters (tab, newlines and form feed aside) above which decoded "text" is binary data.
MAX_CONTROL_SHARE = 0.05
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Section:
    """A page of a PDF, or the text under one heading path; `start` is its offset in LoadedDocument.text."""

    text: str
    page: int | None
    heading: str | None
    start: int


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed file: its safe base name, type, sections in reading order and, for PDFs, its page count."""

    filename: str
    type: DocumentType
    sections: list[Section]
    pages: int | None

    @cached_property
    def text(self) -> str:
        """The sections joined by blank lines: every Section.start is an offset into this."""
        return SEPARATOR.join(section.text for section in self.sections)


def safe_filename(name: str) -> str:
    """The base name only, without control characters; never empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(char for char in base if unicodedata.category(char)[0] != "C").strip()
    if base in {"", ".", ".."}:
        return "document"
    if len(base) > 255:  # keep the extension, which decides the loader
        stem, dot, extension = base.rpartition(".")
        base = f"{stem[: 254 - len(extension)]}.{extension}" if dot and len(extension) < 16 else base[:255]
    return base


def detect_type(filename: str, content_type: str | None = None) -> DocumentType:
    """The document type from the extension (or, with no extension at all, from the content type)."""
    suffix = PurePosixPath(filename).suffix.lower()
    found = EXTENSIONS.get(suffix)
    if found is None and not suffix and content_type:
        found = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    if found is None:
        accepted = " ".join(EXTENSIONS)
        raise UnsupportedDocumentType(f"{filename} is not a supported document type; accepted: {accepted}")
    return found


def load_document(filename: str, data: bytes, doc_type: DocumentType | None = None) -> LoadedDocument:
    """Parse one file into sections; raises UnreadableDocument (naming the file) when there is no text to index."""
    filename = safe_filename(filename)
    kind = doc_type or detect_type(filename)
    pages: int | None = None
    if kind == "pdf":
        parts, pages = _pdf_parts(filename, data)
    elif kind == "docx":
        parts = _guarded(filename, "Word", lambda: docx_parts(data))
    elif kind == "html":
        parts = _guarded(filename, "HTML", lambda: html_parts(data))
    elif kind == "md":
        parts = markdown_parts(_decode(filename, data))
    else:
        parts = [Part(normalise_text(_decode(filename, data)))]
    return _assemble(filename, kind, parts, pages)


def normalise_text(text: str) -> str:
    """Unix newlines, no trailing spaces, at most one blank line in a row, no leading/trailing blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    # rstrip per line, not a regex like `[ \t]+\n`: that one rescans a long run of spaces from each of its starts.
    text = "\n".join(line.rstrip(" \t\f\v") for line in text.split("\n"))
    return BLANK_LINES.sub("\n\n", text).strip()


def _pdf_text(text: str) -> str:
    """pypdf's layout noise: runs of spaces, words hyphenated across lines, ligatures and odd spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    return normalise_text("\n".join(line.strip() for line in text.split("\n")))


def _pdf_parts(filename: str, data: bytes) -> tuple[list[Part], int]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument(f"{filename} is encrypted and needs a password; upload a decrypted copy")
        parts = [Part(_pdf_text(page.extract_text() or ""), page=number) for number, page in enumerate(reader.pages, 1)]
        pages = len(reader.pages)
    except UnreadableDocument:
        raise
    except (FileNotDecryptedError, DependencyError) as exc:
        raise UnreadableDocument(f"{filename} is encrypted and cannot be opened: {exc}") from exc
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on damaged files
        raise UnreadableDocument(f"{filename} is not a readable PDF: {exc}") from exc
    if pages and not any(part.text for part in parts):
        raise UnreadableDocument(f"{filename} has no text layer (scanned?): run OCR on it first")
    return parts, pages


def _guarded(filename: str, what: str, parse: Callable[[], list[Part]]) -> list[Part]:
    try:
        return parse()
    except Exception as exc:  # python-docx and lxml raise assorted types on damaged files
        raise UnreadableDocument(f"{filename} is not a readable {what} document: {exc}") from exc


def _decode(filename: str, data: bytes) -> str:
    """UTF-8 (with or without BOM), else the encoding charset_normalizer finds; binary data is refused."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        matches = from_bytes(data)
        best = matches.best()
        if best is None:
            raise UnreadableDocument(f"{filename} is not text in any known encoding (binary file?)") from None
        # Short Western texts fit cp1250/cp1252/cp1257 equally well: take Windows' Western default on a tie.
        tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
        text = str(next((m for m in tied if m.encoding == "cp1252"), best))
    if text and CONTROL_CHARS.subn("", text)[1] > MAX_CONTROL_SHARE * len(text):
        raise UnreadableDocument(f"{filename} looks like binary data, not text")
    return text


def _assemble(filename: str, kind: DocumentType, parts: list[Part], pages: int | None) -> LoadedDocument:
    parts = [part for part in parts if part.text]
    # A heading directly followed by another adds nothing a chunk's section path does not already say.
    with_body = [part for part in parts if part.body]
    if not with_body and len(parts) > 1:  # headings only: one section, not one per heading (300,000 '#' lines)
        with_body = [Part("\n".join(part.text for part in parts))]
    elif not with_body:
        with_body = parts
    if not with_body:
        raise UnreadableDocument(f"{filename} is empty: no text to index")
    sections: list[Section] = []
    offset = 0
    for part in with_body:
        sections.append(Section(part.text, part.page, part.heading, offset))
        offset += len(part.text) + len(SEPARATOR)
    return LoadedDocument(filename, kind, sections, pages)
