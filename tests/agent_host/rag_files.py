"""Real documents of every supported type, generated in memory for the RAG tests."""

import io
import textwrap

from docx import Document
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

# Paragraphs on distinct topics, so retrieval and section tests can tell them apart.
PARAGRAPHS = {
    "volcano": (
        "Mount Etna is an active stratovolcano on the east coast of Sicily. Its eruptions send lava flows down the "
        "slopes towards the villages, and the ash clouds close the airport at Catania several times a year."
    ),
    "bread": (
        "Sourdough bread rises with a starter of wild yeast and lactic bacteria instead of baker's yeast. The dough "
        "ferments slowly overnight, which gives the crumb its open holes and the crust its sour taste."
    ),
    "orbit": (
        "The International Space Station circles the Earth about every ninety minutes at an altitude of roughly four "
        "hundred kilometres. Its crew sees sixteen sunrises and sixteen sunsets each day."
    ),
    "chess": (
        "In chess the queen moves any number of squares along a rank, file or diagonal. Castling moves the king two "
        "squares towards a rook, which then jumps over to the square the king crossed."
    ),
}


def pdf_bytes(pages: list[str]) -> bytes:
    """A text PDF with one entry of `pages` per page, wrapped to fit the page."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for page_text in pages:
        text = pdf.beginText(50, 800)
        text.setFont("Helvetica", 11)
        for paragraph in page_text.split("\n\n"):
            for line in textwrap.wrap(paragraph, 90):
                text.textLine(line)
            text.textLine("")
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def encrypted_pdf(pages: list[str], user_password: str = "s3cret") -> bytes:
    """A PDF encrypted with AES-256; with an empty `user_password` anyone can open it (owner password only)."""
    reader = PdfReader(io.BytesIO(pdf_bytes(pages)))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password="owner-only", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def image_only_pdf(pages: int = 2) -> bytes:
    """What a scanner produces without OCR: pages of drawings and no text layer."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for number in range(pages):
        pdf.setFillGray(0.2 + 0.1 * number)
        pdf.rect(60, 300, 400, 400, fill=1)
        pdf.circle(300, 200, 50 + 10 * number, fill=1)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def docx_bytes(table_rows: list[list[str]] | None = None, empty: bool = False) -> bytes:
    """A Word file: a title, two headed sections (one nested), a table between paragraphs."""
    document = Document()
    if not empty:
        document.add_heading("Field guide", level=0)
        document.add_paragraph("Notes collected on a long trip.")
        document.add_heading("Volcanoes", level=1)
        document.add_paragraph(PARAGRAPHS["volcano"])
        document.add_heading("Eruption log", level=2)
        rows = table_rows or [["Year", "Volcano", "Lava"], ["2021", "Etna", "strombolian fountains"]]
        table = document.add_table(rows=len(rows), cols=len(rows[0]))
        for row, values in zip(table.rows, rows, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
        document.add_paragraph("After the table comes this closing remark about ash.")
        document.add_heading("Baking", level=1)
        document.add_paragraph(PARAGRAPHS["bread"])
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


MARKDOWN = f"""Intro line before any header.

# Install

General notes.

## From source

Clone the repository and run `make setup`.

```bash
# this is a shell comment, not a header
make up
```

## From wheels

{PARAGRAPHS["orbit"]}

# Usage

{PARAGRAPHS["chess"]}
"""

HTML = f"""<!doctype html>
<html><head><title>Travel notes</title><style>body {{ color: red; }}</style></head>
<body>
<header><p>SITE HEADER do not index</p></header>
<nav><a href="/">Home</a> <a href="/menu">MENU LINK</a></nav>
<script>var secret = "SCRIPT TEXT";</script>
<h1>Travel notes</h1>
<p>Written on the road.</p>
<h2>Sicily</h2>
<p>{PARAGRAPHS["volcano"]}</p>
<ul><li>Catania</li><li>Taormina</li></ul>
<h3>Food</h3>
<p>{PARAGRAPHS["bread"]}</p>
<table><tr><th>Town</th><th>Dish</th></tr><tr><td>Palermo</td><td>arancini</td></tr></table>
<h2>Space</h2>
<p>{PARAGRAPHS["orbit"]}</p>
<footer>FOOTER TEXT do not index</footer>
</body></html>
"""


def text_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)
