"""Loaders turn real PDF, DOCX, HTML, Markdown and text files into sections with pages, heading paths and offsets."""

import os
import re
import time

import pytest
from rag_files import HTML, MARKDOWN, PARAGRAPHS, docx_bytes, encrypted_pdf, image_only_pdf, pdf_bytes, text_bytes

from agent_host.errors import UnreadableDocument, UnsupportedDocumentType
from agent_host.rag.loaders import LoadedDocument, detect_type, load_document, safe_filename
from procs import scaled


def assert_offsets_exact(doc: LoadedDocument) -> None:
    assert doc.sections
    for section in doc.sections:
        assert section.text
        assert doc.text[section.start : section.start + len(section.text)] == section.text


def test_pdf_has_one_section_per_page_with_its_page_number() -> None:
    data = pdf_bytes([PARAGRAPHS["volcano"], "", f"{PARAGRAPHS['bread']}\n\n{PARAGRAPHS['chess']}"])
    doc = load_document("trip.pdf", data)
    assert (doc.type, doc.pages) == ("pdf", 3)
    assert [section.page for section in doc.sections] == [1, 3]  # the blank page adds no section
    assert "stratovolcano" in doc.sections[0].text and "Sourdough" not in doc.sections[0].text
    assert "Sourdough" in doc.sections[1].text and "queen" in doc.sections[1].text
    assert "  " not in doc.text
    assert_offsets_exact(doc)


def test_pdf_encrypted_with_a_password_is_refused_naming_the_file() -> None:
    with pytest.raises(UnreadableDocument, match=r"secret\.pdf is encrypted"):
        load_document("secret.pdf", encrypted_pdf([PARAGRAPHS["orbit"]]))


def test_pdf_encrypted_with_an_empty_user_password_opens() -> None:
    doc = load_document("protected.pdf", encrypted_pdf([PARAGRAPHS["orbit"]], user_password=""))
    assert "International Space Station" in doc.text


def test_scanned_pdf_without_a_text_layer_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match=r"scan\.pdf has no text layer \(scanned\?\)"):
        load_document("scan.pdf", image_only_pdf())


@pytest.mark.parametrize("data", [b"%PDF-1.7\n garbage that ends too soon", os.urandom(3000), b""])
def test_corrupt_pdf_is_refused_naming_the_file(data: bytes) -> None:
    with pytest.raises(UnreadableDocument, match=r"broken\.pdf"):
        load_document("broken.pdf", data)


def test_markdown_sections_carry_their_header_path() -> None:
    doc = load_document("guide.md", MARKDOWN.encode())
    assert [section.heading for section in doc.sections] == [
        None,
        "Install",
        "Install > From source",
        "Install > From wheels",
        "Usage",
    ]
    source = doc.sections[2].text
    assert source.startswith("## From source") and "# this is a shell comment, not a header" in source
    assert "International Space Station" in doc.sections[3].text
    assert_offsets_exact(doc)


def test_markdown_header_with_nothing_under_it_adds_no_section() -> None:
    doc = load_document("notes.md", b"# Book\n\n## Chapter one\n\nIt was a dark night.\n\n## Chapter two\n\nDawn.\n")
    assert [section.heading for section in doc.sections] == ["Book > Chapter one", "Book > Chapter two"]


def test_markdown_closing_hashes_and_deeper_levels_shape_the_path() -> None:
    text = "# Top #\n\n### Deep ###\n\nbody one\n\n## Middle\n\nbody two\n\n~~~\n# not a header\n~~~\n"
    doc = load_document("deep.md", text.encode())
    assert [section.heading for section in doc.sections] == ["Top > Deep", "Top > Middle"]
    assert "# not a header" in doc.sections[1].text


def test_html_keeps_content_under_heading_paths_and_drops_page_furniture() -> None:
    doc = load_document("notes.html", HTML.encode())
    assert [section.heading for section in doc.sections] == [
        "Travel notes",
        "Travel notes > Sicily",
        "Travel notes > Sicily > Food",
        "Travel notes > Space",
    ]
    for dropped in ("SITE HEADER", "MENU LINK", "SCRIPT TEXT", "FOOTER TEXT", "color: red"):
        assert dropped not in doc.text
    sicily, food = doc.sections[1].text, doc.sections[2].text
    assert "stratovolcano" in sicily and "Catania\nTaormina" in sicily
    assert "Town | Dish\nPalermo | arancini" in food
    assert_offsets_exact(doc)


def test_html_with_only_scripts_is_empty() -> None:
    with pytest.raises(UnreadableDocument, match=r"blank\.html is empty"):
        load_document("blank.html", b"<html><head><script>var x = 1;</script></head><body> </body></html>")


def test_docx_headings_open_sections_and_table_cells_are_kept_in_order() -> None:
    doc = load_document("guide.docx", docx_bytes([["Year", "Volcano"], ["1669", "Etna flank eruption"]]))
    assert [section.heading for section in doc.sections] == [
        "Field guide",
        "Field guide > Volcanoes",
        "Field guide > Volcanoes > Eruption log",
        "Field guide > Baking",
    ]
    log = doc.sections[2].text
    assert "1669 | Etna flank eruption" in log
    assert log.index("Year | Volcano") < log.index("closing remark about ash")
    assert "Sourdough" in doc.sections[3].text
    assert_offsets_exact(doc)


def test_empty_docx_is_refused_as_empty() -> None:
    with pytest.raises(UnreadableDocument, match=r"^empty\.docx is empty: no text to index$"):
        load_document("empty.docx", docx_bytes(empty=True))


def test_docx_that_is_not_a_zip_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match=r"fake\.docx"):
        load_document("fake.docx", b"PK\x03\x04 this is not a word file")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Grüße aus Köln, ça va très bien. Die Straße ist naß und die Bäume blühen.", "cp1252"),
        ("Привет, как дела? Это тестовый текст на русском языке о погоде и планах.", "cp1251"),
        ("Plain text with a byte order mark in front of it.", "utf-8-sig"),
    ],
)
def test_text_in_other_encodings_is_decoded(text: str, encoding: str) -> None:
    doc = load_document("letter.txt", text_bytes(text, encoding))
    assert doc.text == text
    assert (doc.type, doc.pages, doc.sections[0].page, doc.sections[0].heading) == ("txt", None, None, None)


def test_text_line_endings_and_blank_runs_are_normalised() -> None:
    doc = load_document("dos.txt", b"first line  \r\nsecond line\r\n\r\n\r\n\r\nthird paragraph\r\n")
    assert doc.text == "first line\nsecond line\n\nthird paragraph"


def test_binary_data_named_txt_is_refused() -> None:
    with pytest.raises(UnreadableDocument, match=r"blob\.txt"):
        load_document("blob.txt", os.urandom(4096))


@pytest.mark.parametrize("name", ["blank.txt", "blank.md", "blank.html"])
def test_whitespace_only_file_is_refused_as_empty(name: str) -> None:
    with pytest.raises(UnreadableDocument, match="^" + re.escape(f"{name} is empty")):
        load_document(name, b" \n\t\n  ")


def test_loaded_document_keeps_only_the_base_name() -> None:
    assert load_document("../../etc/notes.md", b"hello").filename == "notes.md"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/x.txt", "x.txt"),
        ("C:\\a\\b.pdf", "b.pdf"),
        ("/abs/path/report.docx", "report.docx"),
        ("bad\x00na\x1bme\n.md", "badname.md"),
        ("..", "document"),
        ("", "document"),
        ("dir/", "document"),
        ("ok name.html", "ok name.html"),
    ],
)
def test_safe_filename_is_a_base_name_without_control_characters(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


def test_safe_filename_shortens_long_names_but_keeps_the_extension() -> None:
    name = safe_filename("a" * 400 + ".pdf")
    assert len(name) == 255 and name.endswith(".pdf")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.pdf", "pdf"),
        ("A.PDF", "pdf"),
        ("a.txt", "txt"),
        ("a.text", "txt"),
        ("a.md", "md"),
        ("a.markdown", "md"),
        ("a.html", "html"),
        ("a.htm", "html"),
        ("a.docx", "docx"),
    ],
)
def test_type_is_detected_by_extension(name: str, expected: str) -> None:
    assert detect_type(name) == expected


def test_content_type_decides_only_when_there_is_no_extension() -> None:
    assert detect_type("README", "text/markdown; charset=utf-8") == "md"
    with pytest.raises(UnsupportedDocumentType):
        detect_type("photo.png", "text/plain")


@pytest.mark.parametrize("name", ["photo.png", "old.doc", "sheet.xlsx", "noextension"])
def test_unsupported_type_names_the_file_and_the_accepted_types(name: str) -> None:
    with pytest.raises(UnsupportedDocumentType) as raised:
        detect_type(name)
    assert name in raised.value.message and ".pdf" in raised.value.message and ".docx" in raised.value.message
    assert raised.value.status == 415


# Hostile texts of 1.2 MB: each once took a quadratic regex minutes (60 KB of spaces took 5 s). Linear, they load
# in well under a second; the bound leaves room for a slow, shared machine.
HOSTILE = {
    "spaces": " " * 1_200_000 + "x",
    "tabs": "\t" * 1_200_000 + "x",
    "hashes": "#" * 1_200_000,
    "heading of spaces": "# " + " " * 1_200_000 + "x",
    "heading of hashes": "# " + "# " * 600_000,
    "newlines": "\n" * 1_200_000 + "x",
    "spaced lines": " \n" * 600_000 + "x",
    "one long line": "lorem ipsum dolor sit amet " * 45_000,
}


@pytest.mark.parametrize("kind", ["txt", "md", "html"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_every_loader_is_linear_on_hostile_text(name: str, kind: str) -> None:
    started = time.perf_counter()
    try:
        doc = load_document(f"hostile.{kind}", HOSTILE[name].encode())
    except UnreadableDocument:
        doc = None  # refused (nothing but whitespace) is as good as indexed, as long as it is quick
    took = time.perf_counter() - started
    assert took < scaled(3.0), f"{name} as {kind}: {took:.2f} s"
    if doc is not None:
        assert all(len(section.heading or "") <= 1000 for section in doc.sections)


def test_a_file_of_only_headings_is_one_section_not_one_per_line() -> None:
    doc = load_document("headings.md", b"#\n" * 100_000)
    assert len(doc.sections) == 1
