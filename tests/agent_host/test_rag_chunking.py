"""Chunking: sizes in the embedding model's tokens, exact offsets, no chunk across a page or section, real overlap."""

import base64
import re
import time
from collections.abc import Callable, Sequence
from itertools import pairwise

import pytest
from rag_files import MARKDOWN, PARAGRAPHS, pdf_bytes

from agent_host.rag.chunking import Chunk, chunk_document
from agent_host.rag.embeddings import load_tokenizer, minilm_path
from agent_host.rag.loaders import LoadedDocument, load_document
from procs import scaled

Counter = Callable[[str], int]

# Real prose: the four topic paragraphs in a varied order, so sentences have different lengths and words.
PROSE = "\n\n".join(PARAGRAPHS[key] for key in ["volcano", "bread", "orbit", "chess", "bread", "orbit", "volcano"] * 6)


@pytest.fixture(scope="module")
def count() -> Counter:
    """The embedding model's own tokenizer, without its special tokens (what Embedder.count_tokens does)."""
    tokenizer = load_tokenizer(minilm_path())
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def assert_well_formed(doc: LoadedDocument, chunks: list[Chunk], size: int, count: Counter) -> None:
    assert chunks
    for number, chunk in enumerate(chunks):
        assert chunk.index == number
        assert chunk.text and chunk.text == chunk.text.strip()
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert count(chunk.text) <= size
        section = next(s for s in doc.sections if s.start <= chunk.start < s.start + len(s.text))
        assert chunk.end <= section.start + len(section.text), "a chunk crosses its section"
        assert (chunk.page, chunk.section) == (section.page, section.heading)


def assert_every_word_is_chunked(doc: LoadedDocument, chunks: list[Chunk]) -> None:
    covered = bytearray(len(doc.text))
    for chunk in chunks:
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    for word in re.finditer(r"\S+", doc.text):
        assert all(covered[word.start() : word.end()]), f"{word.group()!r} at {word.start()} is in no chunk"


@pytest.mark.parametrize(("size", "overlap"), [(100, 15), (40, 10), (16, 0), (256, 50)])
def test_chunks_fit_the_size_in_model_tokens_and_lose_no_text(size: int, overlap: int, count: Counter) -> None:
    doc = load_document("prose.txt", PROSE.encode())
    chunks = chunk_document(doc, size, overlap, count)
    assert_well_formed(doc, chunks, size, count)
    assert_every_word_is_chunked(doc, chunks)
    # Packed, not one sentence per chunk: on average well over half full.
    assert sum(count(chunk.text) for chunk in chunks) / len(chunks) > size / 2


def test_chunks_never_cross_a_pdf_page(count: Counter) -> None:
    pages = [f"{PARAGRAPHS['volcano']}\n\n{PARAGRAPHS['bread']}", PARAGRAPHS["orbit"], PARAGRAPHS["chess"] * 3]
    doc = load_document("three.pdf", pdf_bytes(pages))
    chunks = chunk_document(doc, 60, 10, count)
    assert_well_formed(doc, chunks, 60, count)
    assert_every_word_is_chunked(doc, chunks)
    assert {chunk.page for chunk in chunks} == {1, 2, 3}
    assert all("International Space Station" not in chunk.text for chunk in chunks if chunk.page != 2)


def test_markdown_chunks_keep_their_header_path(count: Counter) -> None:
    doc = load_document("guide.md", MARKDOWN.encode())
    chunks = chunk_document(doc, 30, 5, count)
    assert_well_formed(doc, chunks, 30, count)
    orbit = [chunk for chunk in chunks if "Space Station" in chunk.text]
    assert orbit and {chunk.section for chunk in orbit} == {"Install > From wheels"}
    assert {chunk.section for chunk in chunks} == {section.heading for section in doc.sections}


def test_a_small_section_is_one_chunk(count: Counter) -> None:
    doc = load_document("short.md", b"# Title\n\nOne short paragraph.\n\nAnd another one.")
    chunks = chunk_document(doc, 100, 15, count)
    assert [(chunk.text, chunk.section) for chunk in chunks] == [
        ("# Title\n\nOne short paragraph.\n\nAnd another one.", "Title")
    ]


def test_chunks_end_at_paragraph_breaks_when_paragraphs_fit(count: Counter) -> None:
    doc = load_document("paragraphs.txt", PROSE.encode())
    paragraph_starts = {0} | {match.end() for match in re.finditer(r"\n\n", doc.text)}
    chunks = chunk_document(doc, 120, 15, count)
    assert len(chunks) > 5
    # Each topic paragraph is 35-45 tokens, so whole paragraphs pack into chunks with no cut inside one.
    assert all(chunk.start in paragraph_starts for chunk in chunks)


def test_consecutive_chunks_of_one_long_paragraph_overlap(count: Counter) -> None:
    paragraph = " ".join(f"Sentence number {n} is about {topic}." for n in range(60) for topic in ["lava"])
    doc = load_document("long.txt", paragraph.encode())
    chunks = chunk_document(doc, 50, 12, count)
    assert_well_formed(doc, chunks, 50, count)
    assert len(chunks) > 3
    for previous, current in pairwise(chunks):
        shared = doc.text[current.start : previous.end]
        assert current.start < previous.end, "no overlap"
        assert 0 < count(shared) <= 12


def test_no_overlap_means_chunks_only_touch(count: Counter) -> None:
    doc = load_document("long.txt", (" ".join(["alpha beta gamma delta."] * 200)).encode())
    chunks = chunk_document(doc, 32, 0, count)
    assert all(current.start >= previous.end for previous, current in pairwise(chunks))


def test_an_unbreakable_run_is_cut_by_characters(count: Counter) -> None:
    blob = base64.b64encode(bytes(range(256)) * 12).decode()
    doc = load_document("blob.txt", f"Data follows.\n\n{blob}\n\nData ends.".encode())
    chunks = chunk_document(doc, 64, 8, count)
    assert_every_word_is_chunked(doc, chunks)
    assert (
        "".join(chunk.text for chunk in chunks if chunk.text not in ("Data follows.", "Data ends.")).find(blob[:200])
        >= 0
    )
    # Cuts inside a word can shift WordPiece boundaries by a token or two; never more.
    assert all(count(chunk.text) <= 64 + 2 for chunk in chunks)


@pytest.mark.parametrize(("size", "overlap"), [(100, 100), (50, 80), (100, -1), (0, 0)])
def test_overlap_must_be_smaller_than_the_chunk_size(size: int, overlap: int, count: Counter) -> None:
    doc = load_document("a.txt", b"some text")
    with pytest.raises(ValueError):
        chunk_document(doc, size, overlap, count)


def test_a_megabyte_of_text_is_chunked_counting_each_piece_about_once(count: Counter) -> None:
    doc = load_document("big.md", (MARKDOWN + "\n\n" + PROSE + "\n\n").encode() * 150)
    assert len(doc.text) > 1_000_000
    tokenized = 0

    def counting(text: str) -> int:
        nonlocal tokenized
        tokenized += len(text)
        return count(text)

    chunks = chunk_document(doc, 100, 15, counting)
    assert_every_word_is_chunked(doc, chunks)
    # No quadratic re-counting: the text goes through the tokenizer less than twice over.
    assert tokenized < 2 * len(doc.text)


def test_a_chunk_runs_into_the_next_paragraph_only_when_it_would_be_under_half_full(count: Counter) -> None:
    keys = ["volcano", "bread", "orbit", "chess"]
    # Paragraphs of 3-4 topic texts (110-170 tokens): too long for one chunk, so they are cut into sentences.
    paragraphs = [" ".join(PARAGRAPHS[keys[(n + i) % 4]] for i in range(3 + n % 2)) for n in range(12)]
    doc = load_document("long-paragraphs.txt", "\n\n".join(paragraphs).encode())
    chunks = chunk_document(doc, 100, 0, count)
    assert_every_word_is_chunked(doc, chunks)
    crossing = [chunk for chunk in chunks[:-1] if "\n\n" in chunk.text]
    for chunk in crossing:
        before_break = chunk.text[: chunk.text.index("\n\n")]
        assert 2 * count(before_break) < 100, "the chunk could have ended at the paragraph break"


@pytest.mark.parametrize(
    "text",
    ["#" * 600_000, "lorem ipsum dolor sit amet " * 40_000, ". " * 300_000, "a" * 1_000_000, "#\n" * 300_000],
    ids=["hashes", "one long line", "sentence marks", "one long word", "heading lines"],
)
def test_chunking_is_linear_on_hostile_text(text: str, count: Counter) -> None:
    doc = load_document("hostile.md", text.encode())
    started = time.perf_counter()
    chunks = chunk_document(doc, 100, 15, count)
    took = time.perf_counter() - started
    assert took < scaled(15.0), f"{took:.2f} s"
    assert_well_formed(doc, chunks, 100, count)


def test_counting_a_level_in_one_batch_gives_the_same_chunks_as_one_by_one(count: Counter) -> None:
    tokenizer = load_tokenizer(minilm_path())

    def count_many(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    doc = load_document("mixed.txt", ("word " * 3000 + "\n\n" + PROSE + "x" * 5000).encode())
    assert chunk_document(doc, 100, 15, count, count_many) == chunk_document(doc, 100, 15, count)
