"""Rebuild bench/rag_eval/corpus/ from a Docutils source distribution (how the committed corpus was made).

    .venv/bin/pip download --no-deps --no-binary :all: docutils==0.21.2 -d /tmp/docutils_sdist
    tar xzf /tmp/docutils_sdist/docutils-0.21.2.tar.gz -C /tmp/docutils_sdist
    .venv/bin/python bench/rag_eval/make_corpus.py /tmp/docutils_sdist/docutils-0.21.2

Takes only the documents that carry their own public-domain declaration; a few are rendered to HTML with
Docutils itself (imported from the sdist) so the eval covers more than one loader.
"""

import argparse
import re
import shutil
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
# Docutils documents that are not public domain (BSD-licensed), layout snippets, and change logs.
SKIPPED = {
    "docs/header.txt",
    "docs/header0.txt",
    "docs/header2.txt",
    "docs/dev/enthought-plan.txt",
    "docs/dev/enthought-rfp.txt",
    "docs/user/smartquotes.txt",
    "HISTORY.txt",
    "RELEASE-NOTES.txt",
}
TOP_LEVEL = ["FAQ.txt", "README.txt", "BUGS.txt"]
# Rendered to HTML: the source keeps its name with .html instead of .txt.
AS_HTML = {
    "docs/user/rst/quickstart.txt",
    "docs/howto/security.txt",
    "docs/user/manpage.txt",
    "docs/dev/testing.txt",
    "docs/api/publisher.txt",
}
PUBLIC_DOMAIN = re.compile(r"placed\s+in\s+the\s+public\s+domain", re.IGNORECASE)


def corpus_name(relative: str) -> str:
    """docs/ref/rst/directives.txt -> ref__rst__directives.txt: sources are matched by base name."""
    return relative.removeprefix("docs/").replace("/", "__")


def to_html(source: Path) -> str:
    from docutils.core import publish_string  # from the sdist on sys.path

    # A linked (not embedded) stylesheet: CSS inside <style> is not document text.
    overrides = {"embed_stylesheet": False, "stylesheet_path": "", "report_level": 5, "halt_level": 5}
    text = source.read_text(encoding="utf-8")
    output = publish_string(text, source_path=str(source), writer_name="html5", settings_overrides=overrides)
    return output.decode("utf-8") if isinstance(output, bytes) else str(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sdist", type=Path, help="the unpacked docutils-X.Y.Z directory")
    args = parser.parse_args()
    sdist = args.sdist.resolve()
    sys.path.insert(0, str(sdist))
    candidates = sorted(str(path.relative_to(sdist)) for path in (sdist / "docs").rglob("*.txt")) + TOP_LEVEL
    shutil.rmtree(CORPUS, ignore_errors=True)
    CORPUS.mkdir()
    kept = 0
    for relative in candidates:
        text = (sdist / relative).read_text(encoding="utf-8")
        if relative in SKIPPED or not PUBLIC_DOMAIN.search(text):
            print(f"skip {relative}")
            continue
        name = corpus_name(relative)
        if relative in AS_HTML:
            (CORPUS / name.removesuffix(".txt")).with_suffix(".html").write_text(to_html(sdist / relative))
        else:
            (CORPUS / name).write_text(text, encoding="utf-8")
        kept += 1
    size = sum(path.stat().st_size for path in CORPUS.iterdir())
    print(f"{kept} documents, {size / 1e6:.2f} MB in {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
