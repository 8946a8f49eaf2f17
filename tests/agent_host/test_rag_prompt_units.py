"""The retrieve step's text fitting, with the model's real tokenizer."""

import pytest

from agent_host.context.tokens import TokenCounter
from agent_host.pipeline.retrieval import MIN_CHUNK_TOKENS, fit_text, label
from agent_host.rag.schemas import Hit

MODEL = "smollm2:135m"


@pytest.fixture(scope="module")
def count() -> TokenCounter:
    return TokenCounter()


def test_a_chunk_that_fits_is_kept_whole(count: TokenCounter) -> None:
    text = "Travel expenses must be filed within thirty days using form TR-7."
    assert fit_text(text, 200, lambda t: count.count(MODEL, t)) == text


def test_a_long_chunk_is_cut_at_a_word_boundary_within_the_budget(count: TokenCounter) -> None:
    text = " ".join(f"word{i}" for i in range(400))
    cut = fit_text(text, 60, lambda t: count.count(MODEL, t))
    assert cut is not None and cut.endswith(" …")
    assert count.count(MODEL, cut) <= 60
    assert text.startswith(cut.removesuffix(" …"))
    assert count.count(MODEL, cut) > 45  # close to the budget, not a token-by-token underfill


def test_no_room_for_a_useful_part_gives_nothing(count: TokenCounter) -> None:
    assert fit_text("a b c d e f g h i j k l m n o p q r s t u v w x y z " * 5, MIN_CHUNK_TOKENS - 1, len) is None


def test_label_names_file_page_and_section() -> None:
    hit = Hit(
        rank=1, chunk_id="d:0:0", document_id="d", collection="c", source="report.pdf", type="pdf", page=3,
        section="Results", start=0, end=4, text="text", score=0.5, vector_score=0.5, bm25_score=None,
    )  # fmt: skip
    assert label(hit) == "report.pdf, page 3, Results"
