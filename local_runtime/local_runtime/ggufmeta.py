"""A GGUF file's key/values and special tokens, read with llama.cpp's own `gguf` reader (no weights loaded)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gguf import GGUFReader, GGUFValueType


@dataclass
class GgufInfo:
    # Scalar key/values as llama.cpp's metadata API gives them: strings, booleans as "true"/"false".
    # Arrays (the vocabulary, merges, scores) are left out, as llama.cpp leaves them out.
    metadata: dict[str, str]
    bos_token: str
    eos_token: str


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}"  # as llama.cpp prints a float (std::to_string)
    return str(value)


def read_gguf_info(path: Path) -> GgufInfo:
    reader = GGUFReader(path, "r")
    metadata: dict[str, str] = {}
    tokens: list[str] = []
    for key, entry in reader.fields.items():
        if key.startswith("GGUF."):  # the reader's own header fields
            continue
        if entry.types and entry.types[0] == GGUFValueType.ARRAY:
            if key == "tokenizer.ggml.tokens":
                tokens = [str(token) for token in entry.contents()]
            continue
        metadata[key] = _text(entry.contents())

    def token(kind: str) -> str:
        index = metadata.get(f"tokenizer.ggml.{kind}_token_id")
        return tokens[int(index)] if index is not None and int(index) < len(tokens) else ""

    return GgufInfo(metadata, token("bos"), token("eos"))


def kv_cache_bytes(metadata: dict[str, str], tokens: int) -> int:
    """The f16 KV cache llama.cpp allocates for `tokens` positions, from the model's shape."""
    arch = metadata.get("general.architecture", "")

    def number(name: str, default: int = 0) -> int:
        value = metadata.get(f"{arch}.{name}")
        return int(value) if value is not None and value.isdigit() else default

    layers, width, heads = number("block_count"), number("embedding_length"), number("attention.head_count", 1)
    kv_heads = number("attention.head_count_kv", heads)
    key_size = number("attention.key_length", width // max(heads, 1))
    value_size = number("attention.value_length", key_size)
    return layers * tokens * kv_heads * (key_size + value_size) * 2
