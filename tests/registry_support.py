"""A local stand-in for registry.ollama.ai: a real HTTP server in the test process serving Ollama's manifests
and blobs (Docker registry v2 URLs, Ollama media types), with a token challenge and Range requests.

    with local_registry({"library/qwen2.5:0.5b": gguf}) as registry:
        start_runtime(models_dir, RUNTIME_REGISTRY=registry.host, RUNTIME_INSECURE_REGISTRIES=registry.host)
"""

import hashlib
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
CHUNK = 256 * 1024
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}
_DIGEST_LOCK = threading.Lock()


def file_digest(path: Path) -> str:
    """sha256:<hex> of a file, cached per (path, size, mtime): the shipped GGUF is hashed once per session."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _DIGEST_LOCK:
        if key not in _FILE_DIGESTS:
            sha = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    sha.update(block)
            _FILE_DIGESTS[key] = f"sha256:{sha.hexdigest()}"
        return _FILE_DIGESTS[key]


def _bytes_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass
class Blob:
    size: int
    path: Path | None = None
    data: bytes | None = None

    def read(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes start..end-1, in chunks."""
        if self.data is not None:
            for offset in range(start, end, CHUNK):
                yield self.data[offset : min(offset + CHUNK, end)]
            return
        assert self.path is not None
        with self.path.open("rb") as handle:
            handle.seek(start)
            left = end - start
            while left > 0:
                block = handle.read(min(CHUNK, left))
                if not block:
                    return
                left -= len(block)
                yield block


@dataclass
class RequestRecord:
    method: str
    path: str
    range: str | None
    authorization: str | None


@dataclass
class LocalRegistry:
    host: str = ""
    token_required: bool = True
    requests: list[RequestRecord] = field(default_factory=list)
    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (namespace/model, tag) → bytes
    blobs: dict[str, Blob] = field(default_factory=dict)
    model_digests: dict[str, str] = field(default_factory=dict)
    corrupted: set[str] = field(default_factory=set)
    # Cut the next `cut_times` blob responses after this many bytes of body (the connection closes).
    cut_after: int | None = None
    cut_times: int = 0
    # Answer blob requests with a 307 to /cdn/<digest> (no token needed there), as registry.ollama.ai sends
    # its blobs to a CDN.
    redirect_blobs: bool = False
    # Bytes per second for blob bodies; None is as fast as the socket goes.
    rate: int | None = None
    # The token the server handed out; requests must carry it when token_required.
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def add(self, name: str, gguf: Path, template: str | None = None, params: dict[str, Any] | None = None) -> str:
        """Serves `gguf` as `name` ("library/qwen2.5:0.5b", "qwen2.5:0.5b" or "ns/model:tag"); the
        manifest's digest (sha256 hex of its bytes)."""
        repository, tag = name.rsplit(":", 1) if ":" in name else (name, "latest")
        if "/" not in repository:
            repository = f"library/{repository}"
        model_digest = file_digest(gguf)
        layers = [{"mediaType": MEDIA_MODEL, "digest": model_digest, "size": gguf.stat().st_size}]
        self.blobs[model_digest] = Blob(gguf.stat().st_size, path=gguf)
        extras = [(MEDIA_TEMPLATE, template.encode() if template is not None else None)]
        extras.append((MEDIA_PARAMS, json.dumps(params).encode() if params is not None else None))
        for media_type, data in extras:
            if data is not None:
                digest = _bytes_digest(data)
                self.blobs[digest] = Blob(len(data), data=data)
                layers.append({"mediaType": media_type, "digest": digest, "size": len(data)})
        config_data = json.dumps(
            {
                "model_format": "gguf",
                "model_family": "llama",
                "model_families": ["llama"],
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            }
        ).encode()
        config_digest = _bytes_digest(config_data)
        self.blobs[config_digest] = Blob(len(config_data), data=config_data)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config_data)},
                "layers": layers,
            }
        ).encode()
        self.manifests[(repository, tag)] = manifest
        self.model_digests[f"{repository}:{tag}"] = model_digest
        return hashlib.sha256(manifest).hexdigest()

    def _key(self, name: str) -> str:
        repository, tag = name.rsplit(":", 1) if ":" in name else (name, "latest")
        return f"{repository if '/' in repository else 'library/' + repository}:{tag}"

    def digest_of(self, name: str) -> str:
        """The digest ("sha256:<hex>") of the model (GGUF) layer served under `name`."""
        return self.model_digests[self._key(name)]

    def manifest_digest(self, name: str) -> str:
        """sha256 hex of the manifest served under `name`: what /api/tags shows as the model's digest."""
        repository, tag = self._key(name).rsplit(":", 1)
        return hashlib.sha256(self.manifests[(repository, tag)]).hexdigest()

    def corrupt(self, digest: str) -> None:
        """Serve this blob with one byte changed (same size), so its sha256 no longer matches."""
        self.corrupted.add(digest)

    def fail_after(self, nbytes: int | None, times: int = 1) -> None:
        """The next `times` blob responses stop after `nbytes` bytes of body and close the connection
        (None: serve whole blobs again)."""
        with self.lock:
            self.cut_after, self.cut_times = nbytes, times if nbytes is not None else 0

    def blob_requests(self) -> list[RequestRecord]:
        return [record for record in self.requests if "/blobs/" in record.path]


_MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>[^/]+/[^/]+)/manifests/(?P<tag>[^/]+)$")
_BLOB_PATH = re.compile(r"^/v2/(?P<repo>[^/]+/[^/]+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_CDN_PATH = re.compile(r"^/cdn/(?P<digest>sha256:[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _handler(registry: LocalRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            self._json(status, {"errors": [{"code": code, "message": message}]}, headers)

        def _authorized(self, repository: str) -> bool:
            if not registry.token_required:
                return True
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer ") and header.removeprefix("Bearer ") in registry.tokens:
                return True
            challenge = (
                f'Bearer realm="http://{registry.host}/token",service="{registry.host}",'
                f'scope="repository:{repository}:pull"'
            )
            self._error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})
            return False

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            with registry.lock:
                registry.requests.append(
                    RequestRecord(
                        self.command, parts.path, self.headers.get("Range"), self.headers.get("Authorization")
                    )
                )
            if parts.path == "/token":
                query = parse_qs(parts.query)
                if not query.get("scope") or not query.get("service"):
                    self._error(400, "INVALID_REQUEST", "scope and service are required")
                    return
                token = secrets.token_hex(16)
                registry.tokens.add(token)
                self._json(200, {"token": token})
                return
            if parts.path == "/v2/":
                self._json(200, {})
                return
            if match := _MANIFEST_PATH.match(parts.path):
                if not self._authorized(match["repo"]):
                    return
                data = registry.manifests.get((match["repo"], match["tag"]))
                if data is None:
                    self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                    return
                self.send_response(200)
                self.send_header("Content-Type", MEDIA_MANIFEST)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Content-Digest", _bytes_digest(data))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                return
            if match := _BLOB_PATH.match(parts.path):
                if not self._authorized(match["repo"]):
                    return
                if registry.redirect_blobs:
                    location = f"http://{registry.host}/cdn/{match['digest']}?expires={int(time.time()) + 60}"
                    self.send_response(307)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._blob(match["digest"])
                return
            if (match := _CDN_PATH.match(parts.path)) and registry.redirect_blobs:
                self._blob(match["digest"])
                return
            self._error(404, "NOT_FOUND", "not found")

        def _blob(self, digest: str) -> None:
            blob = registry.blobs.get(digest)
            if blob is None:
                self._error(404, "BLOB_UNKNOWN", "blob unknown to registry")
                return
            start, end, status = 0, blob.size, 200
            requested = self.headers.get("Range")
            if requested:
                match = _RANGE.match(requested.strip())
                if match is None or int(match[1]) >= blob.size:
                    self._error(416, "RANGE_INVALID", "requested range not satisfiable")
                    return
                start = int(match[1])
                end = min(int(match[2]) + 1, blob.size) if match[2] else blob.size
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{blob.size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            with registry.lock:
                cut = registry.cut_after if registry.cut_times > 0 else None
                if cut is not None:
                    registry.cut_times -= 1
            if blob.path is not None and cut is None and not registry.rate and digest not in registry.corrupted:
                self.wfile.flush()
                with blob.path.open("rb") as handle:  # zero-copy, as a real registry's CDN would serve it
                    self.connection.sendfile(handle, offset=start, count=end - start)
                return
            sent, offset = 0, start
            for chunk in blob.read(start, end):
                if digest in registry.corrupted and offset <= blob.size // 2 < offset + len(chunk):
                    middle = blob.size // 2 - offset
                    chunk = chunk[:middle] + bytes([chunk[middle] ^ 0xFF]) + chunk[middle + 1 :]
                if cut is not None and sent + len(chunk) >= cut:
                    self.wfile.write(chunk[: cut - sent])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                offset += len(chunk)
                if registry.rate:
                    time.sleep(len(chunk) / registry.rate)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a cancelled pull, a runtime stopped mid-download) is no error here."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@contextmanager
def local_registry(
    models: dict[str, Path], *, token: bool = True, template: str | None = None, params: dict[str, Any] | None = None
) -> Iterator[LocalRegistry]:
    """A registry on 127.0.0.1 serving each name → GGUF (with a template and params layer when given)."""
    registry = LocalRegistry(token_required=token)
    for name, gguf in models.items():
        registry.add(name, gguf, template=template, params=params)
    server = _QuietServer(("127.0.0.1", 0), _handler(registry))
    registry.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="local-registry", daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
