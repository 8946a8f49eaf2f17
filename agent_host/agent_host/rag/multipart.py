"""A multipart/form-data upload read as it streams in: each file is held to its size limit while it arrives.

A file over the per-file limit is counted but not kept, so it is never whole in memory; more files than allowed
stop the upload at the first one too many. (The body as a whole is held to RAG_MAX_UPLOAD_BYTES by the middleware.)
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from agent_host.errors import InvalidUpload, TooManyFiles

FIELD = "files"


@dataclass
class UploadedFile:
    """One `files` part: its name and type as sent, its bytes (empty when it went over the limit) and full size."""

    filename: str
    content_type: str | None
    data: bytearray = field(default_factory=bytearray)
    size: int = 0
    oversized: bool = False


class _Reader:
    def __init__(self, max_file_bytes: int, max_files: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.files: list[UploadedFile] = []
        self.current: UploadedFile | None = None
        self.headers: dict[bytes, bytes] = {}
        self.header_field = b""
        self.header_value = b""

    def part_begin(self) -> None:
        self.headers, self.current = {}, None
        self.header_field = self.header_value = b""

    def header_field_data(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        # Header lines are bounded by python-multipart's own limits; keep only the two that matter.
        name = self.header_field.lower()
        if name in (b"content-disposition", b"content-type"):
            self.headers[name] = self.header_value
        self.header_field = self.header_value = b""

    def headers_finished(self) -> None:
        disposition, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or options.get(b"name") != FIELD.encode() or b"filename" not in options:
            return  # other fields are read past, not kept
        if len(self.files) == self.max_files:
            raise TooManyFiles(f"more than {self.max_files} files in one upload (RAG_MAX_FILES)")
        content_type = self.headers.get(b"content-type")
        self.current = UploadedFile(
            filename=options[b"filename"].decode("utf-8", "replace"),
            content_type=content_type.decode("latin-1") if content_type else None,
        )
        self.files.append(self.current)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        upload = self.current
        if upload is None:
            return
        upload.size += end - start
        if upload.size > self.max_file_bytes:
            upload.oversized = True
            upload.data = bytearray()  # the part keeps being read (and counted), not kept
        else:
            upload.data += data[start:end]


async def read_files(
    chunks: AsyncIterator[bytes], content_type: str, max_file_bytes: int, max_files: int
) -> list[UploadedFile]:
    """The `files` parts of a multipart body, in order; raises InvalidUpload or TooManyFiles."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidUpload("send the files as multipart/form-data, one `files` part per file")
    reader = _Reader(max_file_bytes, max_files)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": reader.part_begin,
            "on_header_field": reader.header_field_data,
            "on_header_value": reader.header_value_data,
            "on_header_end": reader.header_end,
            "on_headers_finished": reader.headers_finished,
            "on_part_data": reader.part_data,
        },
    )
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidUpload(f"the multipart body is malformed: {exc}") from exc
    if not reader.files:
        raise InvalidUpload("no files: send one or more `files` parts (multipart/form-data)")
    return reader.files
