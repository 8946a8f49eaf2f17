"""The streaming upload reader: files held to their limit while they arrive, malformed bodies refused."""

from collections.abc import AsyncIterator

import pytest

from agent_host.errors import InvalidUpload, TooManyFiles
from agent_host.rag.multipart import read_files

BOUNDARY = "test-boundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def head(filename: str, field: str = "files") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()


async def stream(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def test_files_arrive_in_order_with_their_names_types_and_bytes() -> None:
    body = [head("a.txt"), b"alpha", b"\r\n", head("b.md"), b"beta", f"\r\n--{BOUNDARY}--\r\n".encode()]
    files = await read_files(stream(body), CONTENT_TYPE, 1000, 10)
    assert [(f.filename, f.content_type, bytes(f.data), f.size) for f in files] == [
        ("a.txt", "text/plain", b"alpha", 5),
        ("b.md", "text/plain", b"beta", 4),
    ]


async def test_a_file_over_the_limit_is_counted_but_not_kept() -> None:
    body = [head("big.txt")] + [b"x" * 1000] * 50 + [head("small.txt"), b"kept", f"\r\n--{BOUNDARY}--\r\n".encode()]
    body[-3] = b"\r\n" + body[-3]
    big, small = await read_files(stream(body), CONTENT_TYPE, 10_000, 10)
    assert (big.oversized, big.size, big.data) == (True, 50_000, bytearray())
    assert (small.oversized, bytes(small.data)) == (False, b"kept")


async def test_the_file_one_too_many_stops_the_upload() -> None:
    body = [head(f"{n}.txt") + b"x\r\n" for n in range(3)] + [f"--{BOUNDARY}--\r\n".encode()]
    with pytest.raises(TooManyFiles):
        await read_files(stream(body), CONTENT_TYPE, 1000, 2)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", [b"{}"]),
        ("multipart/form-data", [b"--x--\r\n"]),  # no boundary
        (CONTENT_TYPE, [f"--{BOUNDARY}--\r\n".encode()]),  # no files
        (CONTENT_TYPE, [head("a.txt", field="other") + f"x\r\n--{BOUNDARY}--\r\n".encode()]),
        (CONTENT_TYPE, [b"garbage before any boundary"]),
    ],
)
async def test_a_body_without_files_is_an_invalid_upload(content_type: str, body: list[bytes]) -> None:
    with pytest.raises(InvalidUpload):
        await read_files(stream(body), content_type, 1000, 10)
