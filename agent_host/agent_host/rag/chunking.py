"""Token-aware recursive splitting of a loaded document into chunks that never cross a section (page, heading)."""

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent_host.rag.loaders import LoadedDocument

# Coarsest first: paragraphs, lines, sentences, words. A piece too big at one level is split at the next.
SEPARATORS = [
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?:(?<=[.!?;…。！？])|(?<=[.!?][\"'”’)\]]))\s+"),
    re.compile(r"\s+"),
]
# A piece longer than this many characters per token of chunk size is split before it is counted (English runs
# ~4.5 characters a MiniLM token). Only a speed-up, halving the text tokenized: a piece that would have fitted is
# split and its parts packed back into the same single chunk.
MAX_CHARS_PER_TOKEN = 6
# Pieces counted per call of the batch tokenizer.
COUNT_SLICE = 256

Span = tuple[int, int]


@dataclass(frozen=True)
class Chunk:
    """A piece of one section: `text == doc.text[start:end]`, with the section's page and heading path."""

    index: int
    text: str
    page: int | None
    section: str | None
    start: int
    end: int


def chunk_document(
    doc: LoadedDocument,
    chunk_tokens: int,
    overlap: int,
    count_tokens: Callable[[str], int],
    count_many: Callable[[Sequence[str]], list[int]] | None = None,
) -> list[Chunk]:
    """Chunks of at most `chunk_tokens` tokens (counted by the embedding model), `overlap` tokens shared in a row.

    `count_many` counts a whole level's pieces in one call (the embedder's batch tokenizer, which leaves the
    GIL): counted one by one, the words of a long line took the host's event loop for 300 ms at a time.
    """
    splitter = Splitter(chunk_tokens, overlap, count_tokens, count_many)
    text = doc.text
    chunks: list[Chunk] = []
    for section in doc.sections:
        for start, end in splitter.split(section.text):
            begin, finish = section.start + start, section.start + end
            chunks.append(Chunk(len(chunks), text[begin:finish], section.page, section.heading, begin, finish))
    return chunks


@dataclass(frozen=True)
class Atom:
    """A piece that fits a chunk; `cut` rates the boundary before it: 0 paragraph break (best) ... 4 inside a word."""

    start: int
    end: int
    tokens: int
    cut: int


class Splitter:
    """Recursive splitting on character offsets, like LangChain's RecursiveCharacterTextSplitter.

    A section is cut at paragraphs, then lines, sentences, words, until every piece fits; the pieces are then
    packed greedily, each chunk ending at the best boundary that keeps it at least half full. Each piece is
    counted once; a chunk's size is the sum of its pieces' counts (exact for WordPiece, which drops whitespace).
    """

    def __init__(
        self,
        chunk_tokens: int,
        overlap: int,
        count_tokens: Callable[[str], int],
        count_many: Callable[[Sequence[str]], list[int]] | None = None,
    ) -> None:
        if chunk_tokens < 1:
            raise ValueError(f"chunk size must be at least 1 token, got {chunk_tokens}")
        if not 0 <= overlap < chunk_tokens:
            raise ValueError(f"overlap must be at least 0 and less than the chunk size ({chunk_tokens}), got {overlap}")
        self.size = chunk_tokens
        self.overlap = overlap
        self.count_tokens = count_tokens
        self.count_many = count_many or (lambda texts: [count_tokens(text) for text in texts])

    def split(self, text: str) -> list[Span]:
        """Spans of `text` (stripped, never empty) of at most the chunk size each."""
        whole = _strip(text, 0, len(text))
        if whole is None:
            return []
        atoms: list[Atom] = []
        tokens = self._count(text, *whole)
        if tokens <= self.size:
            return [whole]
        self._atomise(text, whole, tokens, 0, 0, atoms)
        return self._pack(atoms)

    def _atomise(self, text: str, span: Span, tokens: int, level: int, cut: int, atoms: list[Atom]) -> None:
        pieces = [span]
        while len(pieces) == 1 and level < len(SEPARATORS):  # a separator that does not occur: try the next
            pieces = _separate(text, span, SEPARATORS[level])
            level += 1
        if len(pieces) == 1:  # one unbreakable run of characters
            self._hard_split(text, span, tokens, cut, atoms)
            return
        for number, ((start, end), count) in enumerate(zip(pieces, self._count_all(text, pieces), strict=True)):
            piece_cut = cut if number == 0 else level - 1
            if count <= self.size:
                atoms.append(Atom(start, end, count, piece_cut))
            else:
                self._atomise(text, (start, end), count, level, piece_cut, atoms)

    def _hard_split(self, text: str, span: Span, tokens: int, cut: int, atoms: list[Atom]) -> None:
        """A run with no whitespace (a URL, base64): cut by characters in proportion to its token density."""
        start, end = span
        width = max(1, (end - start) * self.size // (tokens + 1))
        if end - start > self.size * MAX_CHARS_PER_TOKEN:  # `tokens` is _count's cap, not a count: cut by length
            width = self.size * MAX_CHARS_PER_TOKEN
        for number, piece_start in enumerate(range(start, end, width)):
            piece = (piece_start, min(end, piece_start + width))
            count = self._count(text, *piece)
            piece_cut = cut if number == 0 else len(SEPARATORS)
            if count <= self.size or piece[1] - piece[0] == 1:
                atoms.append(Atom(*piece, count, piece_cut))
            else:
                self._hard_split(text, piece, count, piece_cut, atoms)

    def _pack(self, atoms: list[Atom]) -> list[Span]:
        chunks: list[Span] = []
        window: list[Atom] = []
        carried = 0  # leading atoms of the window that the previous chunk already holds (the overlap)
        for atom in atoms:
            while window and sum(a.tokens for a in window) + atom.tokens > self.size:
                if len(window) == carried:  # only overlap left and the next piece does not fit beside it
                    window.pop(0)
                    carried -= 1
                    continue
                end = self._best_end(window, carried, atom)
                chunks.append((window[0].start, window[end - 1].end))
                boundary = window[end].cut if end < len(window) else atom.cut
                # No overlap across a paragraph break: the next chunk starts a new thought anyway.
                kept = self._tail(window[:end]) if boundary > 0 else []
                window, carried = kept + window[end:], len(kept)
            window.append(atom)
        if len(window) > carried:
            chunks.append((window[0].start, window[-1].end))
        return chunks

    def _best_end(self, window: list[Atom], carried: int, following: Atom) -> int:
        """How many atoms the chunk takes: the strongest boundary that leaves it at least half full, latest first."""
        best, best_cut = len(window), following.cut
        filled = sum(atom.tokens for atom in window)
        for end in range(len(window) - 1, carried, -1):
            filled -= window[end].tokens
            if 2 * filled < self.size:
                break
            if window[end].cut < best_cut:
                best, best_cut = end, window[end].cut
        return best

    def _tail(self, atoms: list[Atom]) -> list[Atom]:
        """The last atoms of a chunk, up to `overlap` tokens, to open the next one."""
        kept: list[Atom] = []
        total = 0
        for atom in reversed(atoms[1:]):
            if total + atom.tokens > self.overlap:
                break
            kept.insert(0, atom)
            total += atom.tokens
        return kept

    def _count(self, text: str, start: int, end: int) -> int:
        if end - start > self.size * MAX_CHARS_PER_TOKEN:
            return self.size + 1
        return self.count_tokens(text[start:end])

    def _count_all(self, text: str, spans: list[Span]) -> list[int]:
        """`_count` of every span, the ones short enough to need the tokenizer counted in one batch."""
        limit = self.size * MAX_CHARS_PER_TOKEN
        short = [span for span in spans if span[1] - span[0] <= limit]
        pieces = [text[start:end] for start, end in short]
        # In slices: one call over 500,000 words would hold the GIL for seconds building its results.
        counted = iter(
            [
                n
                for first in range(0, len(pieces), COUNT_SLICE)
                for n in self.count_many(pieces[first : first + COUNT_SLICE])
            ]
        )
        return [next(counted) if end - start <= limit else self.size + 1 for start, end in spans]


def _separate(text: str, span: Span, separator: re.Pattern[str]) -> list[Span]:
    """The stripped, non-empty pieces of `span` between matches of `separator`."""
    pieces: list[Span] = []
    cursor = span[0]
    for match in separator.finditer(text, span[0], span[1]):
        if (piece := _strip(text, cursor, match.start())) is not None:
            pieces.append(piece)
        cursor = match.end()
    if (piece := _strip(text, cursor, span[1])) is not None:
        pieces.append(piece)
    return pieces


def _strip(text: str, start: int, end: int) -> Span | None:
    segment = text[start:end]
    stripped = segment.lstrip()
    if not stripped:
        return None
    start += len(segment) - len(stripped)
    return start, start + len(stripped.rstrip())
