"""Pulled and created models in Ollama's on-disk layout: `blobs/sha256-<hex>` and
`manifests/<host>/<namespace>/<model>/<tag>` (a Docker v2 manifest with Ollama's media types)."""

import asyncio
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_runtime.errors import InvalidRequest, ModelNotFound

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_SYSTEM = "application/vnd.ollama.image.system"
MEDIA_LICENSE = "application/vnd.ollama.image.license"
MEDIA_PROJECTOR = "application/vnd.ollama.image.projector"
MEDIA_ADAPTER = "application/vnd.ollama.image.adapter"
MEDIA_MESSAGES = "application/vnd.ollama.image.messages"

DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
# A manifest is a few hundred bytes; these bound what a hostile registry (or a hand-edited file) can make us parse.
MAX_MANIFEST_BYTES = 1 << 20
MAX_LAYERS = 64
# Layers other than weights are text read into memory (template, params, system, license, config).
MAX_TEXT_LAYER_BYTES = 1 << 20
CHUNK = 1 << 20

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# Ollama lets `:` anywhere in a host; a URL needs host[:port].
_HOST = re.compile(r"^[a-z0-9_][a-z0-9_.-]*(:[0-9]{1,5})?$")
_PART_LIMITS = {"host": 350, "namespace": 80, "model": 80, "tag": 80}


def check_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise InvalidRequest(f"invalid digest format: {digest[:80]!r}, expected sha256:<64 hex digits>")
    return digest


def _valid_part(kind: str, text: str) -> bool:
    """types/model/name.go isValidPart: [A-Za-z0-9_] first, then those and `-`, `.` (not in a namespace),
    `:` only in a host (its port)."""
    if not 1 <= len(text) <= _PART_LIMITS[kind] or not (text[0].isascii() and (text[0].isalnum() or text[0] == "_")):
        return False
    for char in text[1:]:
        if char in "_-" or (char.isascii() and char.isalnum()):
            continue
        if char == "." and kind != "namespace":
            continue
        if char == ":" and kind == "host":
            continue
        return False
    return True


@dataclass(frozen=True)
class ModelName:
    """host/namespace/model:tag, every part filled in with Ollama's defaults; lower-case (names are
    case-insensitive in Ollama)."""

    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, text: str, default_host: str) -> "ModelName":
        """Ollama's ParseName: `model[:tag]`, `namespace/model[:tag]`, `host[:port]/namespace/model[:tag]`."""
        raw = text.strip().lower()
        if "://" in raw:  # Ollama accepts a scheme prefix; whether to use http is decided by the settings
            raw = raw.split("://", 1)[1]
        tag = DEFAULT_TAG
        if raw.rfind(":") > raw.rfind("/"):
            raw, tag = raw.rsplit(":", 1)
        parts = raw.split("/")
        if len(parts) > 3:
            raise InvalidRequest("invalid model name")
        host, namespace = default_host.lower(), DEFAULT_NAMESPACE
        if len(parts) == 3:
            host, namespace, model = parts
        elif len(parts) == 2:
            namespace, model = parts
        else:
            model = parts[0]
        name = cls(host, namespace, model, tag)
        if not all(_valid_part(kind, getattr(name, kind)) for kind in _PART_LIMITS) or not _HOST.match(host):
            raise InvalidRequest("invalid model name")
        return name

    def display(self, default_host: str) -> str:
        """Ollama's DisplayShortest: `qwen2.5:0.5b` on the default registry, else as much as differs."""
        if self.host != default_host.lower():
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"

    @property
    def repository(self) -> str:
        """What a registry's /v2/ URLs name: namespace/model."""
        return f"{self.namespace}/{self.model}"


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @classmethod
    def from_json(cls, data: object) -> "Layer":
        if not isinstance(data, dict):
            raise InvalidRequest("invalid manifest: a layer is not an object")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str) or type(size) is not int or size < 0:
            raise InvalidRequest("invalid manifest: a layer lacks mediaType, digest or size")
        return cls(media_type[:200], check_digest(digest), size)


@dataclass(frozen=True)
class Manifest:
    """`digest` is the sha256 hex of the manifest file (what Ollama's /api/tags shows); `size` is the total
    of the layers and the config, as Ollama counts a model's size."""

    layers: list[Layer]
    config: Layer
    digest: str
    size: int

    def layer(self, media_type: str) -> Layer | None:
        return next((layer for layer in self.layers if layer.media_type == media_type), None)

    @property
    def blobs(self) -> list[Layer]:
        return [*self.layers, self.config]

    @classmethod
    def parse(cls, data: bytes) -> "Manifest":
        """Checks what is read: bounded size and layer count, well-formed digests (they become file names)."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise InvalidRequest(f"invalid manifest: larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            body = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidRequest(f"invalid manifest: {exc}") from exc
        if not isinstance(body, dict) or body.get("schemaVersion") != 2:
            raise InvalidRequest("invalid manifest: expected schemaVersion 2")
        raw_layers = body.get("layers")
        if not isinstance(raw_layers, list) or not raw_layers:
            raise InvalidRequest("invalid manifest: no layers")
        if len(raw_layers) > MAX_LAYERS:
            raise InvalidRequest(f"invalid manifest: {len(raw_layers)} layers, at most {MAX_LAYERS} are accepted")
        layers = [Layer.from_json(item) for item in raw_layers]
        config = Layer.from_json(body.get("config"))
        size = sum(layer.size for layer in layers) + config.size
        return cls(layers, config, hashlib.sha256(data).hexdigest(), size)


def manifest_bytes(layers: list[Layer], config: Layer) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    return json.dumps(body).encode()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class ModelStore:
    def __init__(self, models_dir: Path, default_registry: str) -> None:
        self.models_dir = models_dir
        self.default_registry = default_registry.lower()
        self.blobs_dir = models_dir / "blobs"
        self.manifests_dir = models_dir / "manifests"
        # Digests an unfinished pull or create has written but no manifest names yet: delete() keeps them.
        self._pinned: dict[str, int] = {}

    def parse_name(self, name: str) -> ModelName:
        return ModelName.parse(name, self.default_registry)

    def display(self, name: ModelName) -> str:
        return name.display(self.default_registry)

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / check_digest(digest).replace(":", "-")

    def partial_path(self, digest: str) -> Path:
        """Where a download in progress grows; kept when it is cut off, so the next pull resumes it."""
        return self.blobs_dir / (check_digest(digest).replace(":", "-") + "-partial")

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def manifest_path(self, name: ModelName) -> Path:
        return self.manifests_dir / name.host / name.namespace / name.model / name.tag

    @contextmanager
    def pinned(self, digests: list[str]) -> Iterator[None]:
        """Keeps these blobs from being collected by a delete() while a pull or create is writing them."""
        for digest in digests:
            self._pinned[digest] = self._pinned.get(digest, 0) + 1
        try:
            yield
        finally:
            for digest in digests:
                self._pinned[digest] -= 1
                if not self._pinned[digest]:
                    del self._pinned[digest]

    async def write_blob(self, digest: str, source: AsyncIterator[bytes] | Path) -> Path:
        """The blob, written to a temp file while hashed and renamed into place only if its sha256 matches."""
        target = self.blob_path(digest)
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=self.blobs_dir, prefix=".tmp-")
        temp = Path(temp_name)
        sha = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(source, Path):
                    await asyncio.to_thread(_copy_hashing, source, handle, sha)
                else:
                    async for chunk in source:
                        sha.update(chunk)
                        handle.write(chunk)
            actual = f"sha256:{sha.hexdigest()}"
            if actual != digest:
                raise InvalidRequest(f"digest mismatch, expected {digest!r}, got {actual!r}")
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return target

    def write_manifest(self, name: str, layers: list[Layer], config: Layer) -> None:
        for blob in [*layers, config]:
            if not self.has_blob(blob.digest):
                raise InvalidRequest(f"blob {blob.digest} is not in the store")
        self.write_manifest_bytes(self.parse_name(name), manifest_bytes(layers, config))

    def write_manifest_bytes(self, name: ModelName, data: bytes) -> Manifest:
        """Stores a manifest as given (a pull keeps the registry's bytes, so the digest is the registry's)."""
        manifest = Manifest.parse(data)
        _atomic_write(self.manifest_path(name), data)
        return manifest

    def read_manifest(self, name: str | ModelName) -> Manifest:
        parsed = self.parse_name(name) if isinstance(name, str) else name
        path = self.manifest_path(parsed)
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_MANIFEST_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ModelNotFound(name if isinstance(name, str) else self.display(parsed)) from exc
        return Manifest.parse(data)

    def modified_at(self, name: ModelName) -> datetime:
        return datetime.fromtimestamp(self.manifest_path(name).stat().st_mtime, tz=UTC)

    def manifest_names(self) -> list[ModelName]:
        """Every well-formed name with a manifest file, sorted; stray files are skipped."""
        found: list[ModelName] = []
        if not self.manifests_dir.is_dir():
            return found
        for path in self.manifests_dir.glob("*/*/*/*"):
            if not path.is_file() or path.name.startswith(".tmp-"):
                continue
            host, namespace, model, tag = path.relative_to(self.manifests_dir).parts
            name = ModelName(host, namespace, model, tag)
            if all(_valid_part(kind, getattr(name, kind)) for kind in _PART_LIMITS):
                found.append(name)
        return sorted(found, key=lambda n: (n.host, n.namespace, n.model, n.tag))

    def names(self) -> list[str]:
        return [self.display(name) for name in self.manifest_names()]

    def referenced_digests(self, skip: ModelName | None = None) -> set[str]:
        referenced = set(self._pinned)
        for name in self.manifest_names():
            if name == skip:
                continue
            try:
                referenced.update(blob.digest for blob in self.read_manifest(name).blobs)
            except InvalidRequest:
                continue  # a broken manifest protects nothing
        return referenced

    def delete(self, name: str) -> None:
        """Removes the manifest, then every blob no other manifest (or unfinished pull) references."""
        parsed = self.parse_name(name)
        manifest = self.read_manifest(parsed)
        self.manifest_path(parsed).unlink()
        keep = self.referenced_digests()
        for blob in manifest.blobs:
            if blob.digest not in keep:
                self.blob_path(blob.digest).unlink(missing_ok=True)
        for directory in list(self.manifest_path(parsed).parents)[:3]:  # empty model/namespace/host dirs
            try:
                directory.rmdir()
            except OSError:
                break

    def copy(self, source: str, destination: str) -> None:
        data = self.manifest_path(self.parse_name(source))
        if not data.is_file():
            raise ModelNotFound(source)
        self.write_manifest_bytes(self.parse_name(destination), data.read_bytes())

    def free_bytes(self) -> int:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.models_dir).free


def _copy_hashing(source: Path, handle: Any, sha: "hashlib._Hash") -> None:
    with source.open("rb") as reader:
        for block in iter(lambda: reader.read(CHUNK), b""):
            sha.update(block)
            handle.write(block)
