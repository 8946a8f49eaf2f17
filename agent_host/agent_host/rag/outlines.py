"""Markdown, HTML and DOCX walked in reading order into parts, each under its heading path."""

import io
import re
from dataclasses import dataclass
from typing import Any

# A heading longer than this is cut in the section path: every chunk of the section carries the path.
MAX_HEADING_CHARS = 200


@dataclass(frozen=True)
class Part:
    """A section before it has an offset; `body` is False for a heading with nothing under it."""

    text: str
    page: int | None = None
    heading: str | None = None
    body: bool = True


class _Outline:
    """Collects sections while a document is walked in order; a heading starts a new one."""

    def __init__(self, joiner: str) -> None:
        self.joiner = joiner
        self.parts: list[Part] = []
        self.path: list[tuple[int, str]] = []
        self.blocks: list[str] = []
        self.body = False

    def heading(self, level: int, title: str, block: str) -> None:
        self.flush()
        title = title[:MAX_HEADING_CHARS]
        self.path = [(depth, name) for depth, name in self.path if depth < level] + [(level, title)]
        self.blocks, self.body = [block], False

    def add(self, block: str) -> None:
        if block.strip():
            self.blocks.append(block)
            self.body = True

    def flush(self) -> None:
        heading = " > ".join(name for _, name in self.path if name) or None
        self.parts.append(Part(self.joiner.join(self.blocks).strip(), heading=heading, body=self.body))
        self.blocks, self.body = [], False


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_parts(text: str) -> list[Part]:
    """One part per ATX header block, the header line included; '#' lines inside fenced code are not headers."""
    outline = _Outline("\n")
    fence = ""
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        opening = FENCE.match(line)
        if fence:
            if opening and opening.group(1).startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
        elif opening:
            fence = opening.group(1)
        elif header := atx_heading(line):
            outline.heading(*header, line)
            continue
        outline.blocks.append(line)
        outline.body = outline.body or bool(line.strip())
    outline.flush()
    return outline.parts


def atx_heading(line: str) -> tuple[int, str] | None:
    """The level and title of an ATX header line ('## Title ##'), else None.

    Scanned with str methods: the regex for it (`(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`) backtracks quadratically
    on a long line of spaces or '#'.
    """
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return None
    level = len(stripped) - len(stripped.lstrip("#"))
    rest = stripped[level:]
    if not 1 <= level <= 6 or (rest and rest[0] not in " \t"):
        return None
    title = rest.strip(" \t")
    unclosed = title.rstrip("#")
    if unclosed and unclosed[-1] in " \t":  # a closing run of '#' counts only after a space
        title = unclosed
    return level, title.strip()


HTML_DROPPED = ["script", "style", "nav", "header", "footer", "noscript", "template", "iframe", "svg", "head"]
HTML_SECTIONS = {"h1": 1, "h2": 2, "h3": 3}
HTML_BLOCKS = {"p", "div", "section", "article", "main", "ul", "ol", "dl", "table", "blockquote", "figure", "pre"}
HTML_BLOCKS |= {"h4", "h5", "h6", "address", "details", "summary", "fieldset", "body"}
HTML_LINES = {"li", "tr", "br", "dt", "dd", "caption", "figcaption", "hr"}
HTML_CELLS = {"td", "th"}
# Break marks while walking (text nodes have their whitespace collapsed, so these cannot come from the page).
PARAGRAPH, CELL = "\x1e", "\x1f"


def html_parts(data: bytes) -> list[Part]:
    """Visible text in reading order; h1-h3 open sections; block tags become line or paragraph breaks."""
    from bs4 import BeautifulSoup, NavigableString, Tag
    from bs4.element import PreformattedString

    soup = BeautifulSoup(data, "lxml")
    for tag in soup(HTML_DROPPED):
        tag.decompose()
    outline = _Outline("")

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, PreformattedString):  # comments, doctype, CDATA
                continue
            if isinstance(child, NavigableString):
                outline.add(re.sub(r"\s+", " ", str(child)))
            elif isinstance(child, Tag) and child.name in HTML_SECTIONS:
                title = child.get_text(" ", strip=True)
                outline.heading(HTML_SECTIONS[child.name], title, title + PARAGRAPH)
            elif isinstance(child, Tag):
                mark = PARAGRAPH if child.name in HTML_BLOCKS else "\n" if child.name in HTML_LINES else ""
                mark = CELL if child.name in HTML_CELLS else mark
                outline.blocks.append(mark)
                walk(child)
                outline.blocks.append(mark)

    walk(soup)
    outline.flush()
    return [Part(_tidy_html(part.text), heading=part.heading, body=part.body) for part in outline.parts]


def _tidy_html(text: str) -> str:
    """Break marks to text: a paragraph mark anywhere in a run of marks makes a blank line, cells join with ' | '."""
    lines: list[str] = []
    pending = ""
    for piece in re.split(f"([\n{PARAGRAPH}])", text):
        if piece in ("\n", PARAGRAPH):
            pending = "\n\n" if piece == PARAGRAPH or pending == "\n\n" else "\n"
            continue
        cells = [" ".join(cell.split()) for cell in piece.split(CELL)]
        if line := " | ".join(cell for cell in cells if cell):
            lines.append((pending if lines else "") + line)
            pending = ""
    return "".join(lines)


def docx_parts(data: bytes) -> list[Part]:
    """Paragraphs and tables in document order; 'Title' and 'Heading N' paragraphs open sections."""
    from docx import Document
    from docx.table import Table

    outline = _Outline("\n\n")
    for block in Document(io.BytesIO(data)).iter_inner_content():
        if isinstance(block, Table):
            outline.add("\n".join(_docx_rows(block)))
            continue
        text = block.text.strip()
        level = _docx_heading_level(block)
        if level is not None and text:
            outline.heading(level, text, text)
        else:
            outline.add(text)
    outline.flush()
    return outline.parts


def _docx_heading_level(paragraph: Any) -> int | None:
    name = paragraph.style.name if paragraph.style is not None else ""
    if name == "Title":
        return 0
    found = re.fullmatch(r"Heading (\d)", name or "")
    return int(found.group(1)) if found else None


def _docx_rows(table: Any) -> list[str]:
    """One line per row, cells joined with ' | '; a merged cell (repeated by python-docx) counts once."""
    rows = []
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            if text := " ".join(cell.text.split()):
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return rows
