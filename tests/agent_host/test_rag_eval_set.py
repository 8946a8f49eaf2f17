"""The RAG evaluation set in bench/rag_eval/ is sound: every answer really is in its source document."""

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup

EVAL_DIR = Path(__file__).resolve().parents[2] / "bench" / "rag_eval"
CORPUS = EVAL_DIR / "corpus"
QUESTIONS = EVAL_DIR / "questions.jsonl"
PUBLIC_DOMAIN = re.compile(r"placed\s+in\s+the\s+public\s+domain", re.IGNORECASE)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def document_texts(path: Path) -> list[str]:
    """What a loader may extract: for HTML both with and without a separator between tags, so a phrase must not
    straddle markup."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix != ".html":
        return [normalise(raw)]
    soup = BeautifulSoup(raw, "lxml")
    return [normalise(soup.get_text(" ")), normalise(soup.get_text())]


@pytest.fixture(scope="module")
def questions() -> list[dict[str, Any]]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    return {path.name: document_texts(path) for path in sorted(CORPUS.iterdir()) if path.is_file()}


def test_question_set_is_large_and_spread_over_many_documents(questions: list[dict[str, Any]]) -> None:
    assert len(questions) >= 100
    assert len({question["source"] for question in questions}) >= 30


def test_every_question_has_the_fields_and_a_unique_id(questions: list[dict[str, Any]]) -> None:
    for question in questions:
        assert set(question) == {"id", "question", "source", "answer"}, question
        assert all(isinstance(value, str) and value.strip() for value in question.values()), question
    ids = Counter(question["id"] for question in questions)
    assert [name for name, count in ids.items() if count > 1] == []


def test_no_question_is_asked_twice(questions: list[dict[str, Any]]) -> None:
    texts = Counter(normalise(question["question"]) for question in questions)
    assert [text for text, count in texts.items() if count > 1] == []


def test_every_source_is_a_corpus_file(questions: list[dict[str, Any]], corpus: dict[str, list[str]]) -> None:
    missing = sorted({question["source"] for question in questions} - set(corpus))
    assert missing == []


def test_every_answer_phrase_occurs_in_its_source(
    questions: list[dict[str, Any]], corpus: dict[str, list[str]]
) -> None:
    absent = [
        (question["id"], question["source"], question["answer"])
        for question in questions
        if question["source"] in corpus
        and not all(normalise(question["answer"]) in text for text in corpus[question["source"]])
    ]
    assert absent == []


def test_corpus_is_public_domain_text_of_a_few_megabytes() -> None:
    files = [path for path in CORPUS.iterdir() if path.is_file()]
    assert 40 <= len(files) <= 80
    assert sum(path.stat().st_size for path in files) <= 3_000_000
    # Each Docutils document carries its own dedication; one without it must not be in the repo.
    undeclared = [path.name for path in files if not PUBLIC_DOMAIN.search(path.read_text(encoding="utf-8"))]
    assert undeclared == []
    assert {path.suffix for path in files} <= {".txt", ".html"}
