"""The real all-MiniLM-L6-v2 in torch fp32 and as the cached ONNX int8 export: agreement, semantics, registry."""

import threading
from pathlib import Path

import numpy as np
import pytest
from rag_files import PARAGRAPHS

from agent_host.errors import EmbeddingModelUnknown
from agent_host.rag import onnx_export
from agent_host.rag.embeddings import MINILM, MINILM_INT8, Embedder, EmbedderRegistry, OnnxEmbedder, minilm_path
from agent_host.rag.onnx_export import export_int8

SENTENCES = [
    "How do I reset my password?",
    "The train to Milan leaves from platform four at nine in the morning.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.",
    "Our quarterly revenue grew by twelve percent thanks to strong sales in Asia.",
    *PARAGRAPHS.values(),
]
# (text, paraphrase, unrelated)
TRIPLES = [
    ("A man is playing the guitar on stage.", "Someone performs music with a guitar.", "Stock markets fell today."),
    ("How can I install the software from source?", "Steps to build the program from its code", "My cat sleeps a lot."),
    (
        "The volcano erupted and lava reached the village.",
        "Molten rock from the eruption flowed into the town.",
        "She baked a chocolate cake for the party.",
    ),
]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def registry(model_cache: Path) -> EmbedderRegistry:
    return EmbedderRegistry(model_cache)


@pytest.fixture(scope="session")
def fp32(registry: EmbedderRegistry) -> Embedder:
    return registry.get(MINILM)


@pytest.fixture(scope="session")
def int8(registry: EmbedderRegistry) -> Embedder:
    return registry.get(MINILM_INT8)


@pytest.fixture(params=[MINILM, MINILM_INT8])
def embedder(request: pytest.FixtureRequest, fp32: Embedder, int8: Embedder) -> Embedder:
    return fp32 if request.param == MINILM else int8


def test_document_embeddings_are_normalised_float32_rows(embedder: Embedder) -> None:
    vectors = embedder.embed_documents(SENTENCES)
    assert embedder.dimension == 384
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert len({row.tobytes() for row in vectors}) == len(SENTENCES)


def test_batched_documents_keep_their_order(embedder: Embedder) -> None:
    # Batches are sorted by length inside; each row must still belong to its own text.
    texts = [*SENTENCES, *(sentence.upper() for sentence in SENTENCES[:4])]
    batched = embedder.embed_documents(texts)
    for text, row in zip(texts, batched, strict=True):
        assert float(row @ embedder.embed_query(text)) > 0.999


def test_query_embedding_is_one_normalised_vector(embedder: Embedder) -> None:
    vector = embedder.embed_query("where does the train to Milan leave from?")
    assert vector.shape == (384,) and vector.dtype == np.float32
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def test_no_texts_give_an_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed_documents([]).shape == (0, 384)


def test_int8_agrees_with_fp32_on_real_text(fp32: Embedder, int8: Embedder) -> None:
    texts = [*SENTENCES, *(text for triple in TRIPLES for text in triple)]
    cosines = np.sum(fp32.embed_documents(texts) * int8.embed_documents(texts), axis=1)
    assert cosines.min() > 0.98, cosines


@pytest.mark.parametrize(("text", "paraphrase", "unrelated"), TRIPLES)
def test_a_paraphrase_is_closer_than_an_unrelated_sentence(
    embedder: Embedder, text: str, paraphrase: str, unrelated: str
) -> None:
    query = embedder.embed_query(text)
    others = embedder.embed_documents([paraphrase, unrelated])
    assert float(query @ others[0]) > float(query @ others[1]) + 0.2


def test_the_question_retrieves_the_paragraph_that_answers_it(embedder: Embedder) -> None:
    keys = list(PARAGRAPHS)
    vectors = embedder.embed_documents([PARAGRAPHS[key] for key in keys])
    question = embedder.embed_query("How often does the space station go around the planet?")
    assert keys[int(np.argmax(vectors @ question))] == "orbit"


def test_text_beyond_the_model_limit_is_truncated_not_refused(embedder: Embedder) -> None:
    long_text = " ".join([PARAGRAPHS["volcano"]] * 30)
    assert embedder.count_tokens(long_text) > 1000
    vector = embedder.embed_documents([long_text])[0]
    assert float(vector @ embedder.embed_query(PARAGRAPHS["volcano"])) > 0.8


def test_tokens_are_counted_with_the_model_vocabulary_without_special_tokens(embedder: Embedder) -> None:
    assert embedder.count_tokens("hello world") == 2
    assert embedder.count_tokens("") == 0
    # WordPiece splits rare words: more tokens than words.
    assert embedder.count_tokens("stratovolcano photosynthesis") > 2


def test_registry_loads_each_model_once(registry: EmbedderRegistry, int8: Embedder) -> None:
    assert registry.names() == [MINILM, MINILM_INT8]
    assert registry.get(MINILM_INT8) is int8
    assert registry.get(MINILM) is registry.get(MINILM)


def test_registry_rejects_an_unknown_model_listing_the_known_ones(registry: EmbedderRegistry) -> None:
    with pytest.raises(EmbeddingModelUnknown) as raised:
        registry.get("text-embedding-3-large")
    assert "text-embedding-3-large" in raised.value.message
    assert MINILM in raised.value.message and MINILM_INT8 in raised.value.message
    assert raised.value.status == 422


def test_concurrent_first_use_loads_one_shared_model(model_cache: Path, int8: Embedder) -> None:
    fresh = EmbedderRegistry(model_cache)
    results: list[Embedder] = []
    threads = [threading.Thread(target=lambda: results.append(fresh.get(MINILM_INT8))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(result is results[0] for result in results)
    assert results[0] is not int8  # a registry of its own, sharing only the cache directory


def test_the_int8_export_is_cached_and_reused(model_cache: Path, int8: Embedder) -> None:
    exports = sorted(model_cache.glob("*.onnx"))
    assert len(exports) == 1
    before = exports[0].stat()
    EmbedderRegistry(model_cache).get(MINILM_INT8)
    assert sorted(model_cache.glob("*.onnx")) == exports
    after = exports[0].stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "the export was redone"
    assert not [path for path in model_cache.iterdir() if path.is_dir()], "a temporary export directory was left"


def test_two_exports_into_one_new_cache_run_once(
    tmp_path: Path, int8: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    exported: list[Path] = []
    real_export = onnx_export._export_fp32

    def spied(model_path: Path, destination: Path) -> None:
        exported.append(destination)
        real_export(model_path, destination)

    monkeypatch.setattr(onnx_export, "_export_fp32", spied)
    cache = tmp_path / "new-cache"
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(export_int8(minilm_path(), cache, MINILM))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(exported) == 1, "the second export did not wait for the first one's file"
    assert len(results) == 2 and results[0] == results[1] and results[0].parent == cache
    assert [path.name for path in cache.glob("*.onnx")] == [results[0].name]
    fresh = OnnxEmbedder(MINILM_INT8, minilm_path(), results[0])
    assert float(fresh.embed_query(SENTENCES[0]) @ int8.embed_query(SENTENCES[0])) > 0.9999
