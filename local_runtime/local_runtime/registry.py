"""Pulling a model from an Ollama registry, as Ollama's server does (server/images.go PullModel,
server/download.go, server/auth.go): the manifest, a Bearer token on a 401 challenge, each blob resumed
from `blobs/sha256-<hex>-partial` with Range, checked against its sha256, then the manifest written."""

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from local_runtime.errors import RuntimeServiceError
from local_runtime.store import (
    MAX_MANIFEST_BYTES,
    MAX_TEXT_LAYER_BYTES,
    MEDIA_ADAPTER,
    MEDIA_MANIFEST,
    MEDIA_MODEL,
    MEDIA_PROJECTOR,
    Layer,
    Manifest,
    ModelName,
    ModelStore,
)

log = logging.getLogger("local_runtime.registry")

_WEIGHT_TYPES = (MEDIA_MODEL, MEDIA_PROJECTOR, MEDIA_ADAPTER)
MAX_TOKEN_BYTES = 64 * 1024
MAX_ERROR_BYTES = 4096
ATTEMPTS_PER_BLOB = 3
PROGRESS_EVERY = 0.1  # seconds between progress lines for one blob (Ollama: 60 ms)
READ_SIZE = 1 << 20


class PullFailed(RuntimeServiceError):
    """A pull that could not finish; the message is Ollama's where Ollama has one. 503 by default: the registry
    could not give the model now (unreachable, a bad or hostile answer, a layer that failed its digest), and a
    pull again resumes from what was kept."""

    def __init__(self, message: str, status_code: int = 503) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass
class Progress:
    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None

    def body(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if value is not None}


def parse_challenge(header: str) -> dict[str, str]:
    """`Bearer realm="...",service="...",scope="..."` → its key/values (auth.go parseRegistryChallenge)."""
    return dict(re.findall(r'(\w+)="([^"]*)"', header.removeprefix("Bearer ")))


class Puller:
    def __init__(self, store: ModelStore, insecure_registries: list[str], timeout: float, free_margin: int) -> None:
        self.store = store
        self.insecure = {host.lower() for host in insecure_registries}
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self.free_margin = free_margin
        # One download per layer at a time: digest → (lock, pulls holding or awaiting it); dropped when unused.
        self._blob_locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def base_url(self, name: ModelName, insecure: bool) -> str:
        scheme = "http" if insecure or name.host in self.insecure else "https"
        return f"{scheme}://{name.host}/v2/{name.repository}"

    async def pull(self, name: ModelName, insecure: bool = False) -> AsyncIterator[Progress]:
        """Ollama's progress steps; a failure raises PullFailed (a partial download is kept for the next pull)."""
        try:
            async for step in self._pull(name, insecure):
                yield step
        except PullFailed:
            raise
        except OSError as exc:  # the models dir, not the network (those are PullFailed already): full or not writable
            message = f"cannot write to {self.store.models_dir}: {exc.strerror or exc}"
            raise PullFailed(message, 507) from exc

    async def _pull(self, name: ModelName, insecure: bool) -> AsyncIterator[Progress]:
        base = self.base_url(name, insecure)
        previous = self._existing(name)
        yield Progress("pulling manifest")
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            client = _Client(session, urlsplit(base).netloc)
            data = await self._manifest(client, base, name)
            manifest = self._checked(data)
            with self.store.pinned([blob.digest for blob in manifest.blobs]):
                self._check_space(manifest)
                for blob in _unique(manifest.blobs):
                    async for progress in self._blob(client, base, blob):
                        yield progress
                yield Progress("verifying sha256 digest")
                for blob in _unique(manifest.blobs):
                    await asyncio.to_thread(self._verify, blob)
                yield Progress("writing manifest")
                await asyncio.to_thread(self.store.write_manifest_bytes, name, data)
        unused = [blob for blob in previous if blob.digest not in {b.digest for b in manifest.blobs}]
        if unused:
            yield Progress("removing unused layers")
            keep = self.store.referenced_digests()
            for blob in unused:
                if blob.digest not in keep:
                    self.store.blob_path(blob.digest).unlink(missing_ok=True)
        yield Progress("success")

    def _existing(self, name: ModelName) -> list[Layer]:
        try:
            return self.store.read_manifest(name).blobs
        except RuntimeServiceError:
            return []

    async def _manifest(self, client: "_Client", base: str, name: ModelName) -> bytes:
        url = f"{base}/manifests/{name.tag}"
        try:
            async with await client.get(url, {"Accept": MEDIA_MANIFEST}) as response:
                if response.status == 404:
                    raise PullFailed("pull model manifest: file does not exist", 404)
                await _raise_for_status(response, "pull model manifest")
                data = await read_bounded(response, MAX_MANIFEST_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PullFailed(f"pull model manifest: registry {name.host} unreachable: {_describe(exc)}") from exc
        if len(data) > MAX_MANIFEST_BYTES:
            raise PullFailed(f"pull model manifest: larger than {MAX_MANIFEST_BYTES} bytes")
        return data

    def _checked(self, data: bytes) -> Manifest:
        try:
            manifest = Manifest.parse(data)
        except RuntimeServiceError as exc:
            raise PullFailed(f"pull model manifest: {exc}") from exc
        for blob in manifest.blobs:
            if blob.media_type not in _WEIGHT_TYPES and blob.size > MAX_TEXT_LAYER_BYTES:
                raise PullFailed(
                    f"pull model manifest: layer {blob.digest} ({blob.media_type}) is {blob.size} bytes, "
                    f"at most {MAX_TEXT_LAYER_BYTES} are accepted"
                )
        return manifest

    def _check_space(self, manifest: Manifest) -> None:
        """Refuses before downloading anything when the layers still to fetch do not fit on the disk."""
        needed = 0
        for blob in _unique(manifest.blobs):
            if self.store.has_blob(blob.digest):
                continue
            partial = self.store.partial_path(blob.digest)
            needed += blob.size - (partial.stat().st_size if partial.is_file() else 0)
        free = self.store.free_bytes()
        if needed + self.free_margin > free:
            raise PullFailed(
                f"not enough disk space to pull: {needed / 1e6:.1f} MB to download, {free / 1e6:.1f} MB free "
                f"in {self.store.models_dir} (RUNTIME_PULL_FREE_MARGIN keeps {self.free_margin / 1e6:.0f} MB free)",
                507,
            )

    async def _blob(self, client: "_Client", base: str, blob: Layer) -> AsyncIterator[Progress]:
        status = f"pulling {blob.digest[7:19]}"
        lock, users = self._blob_locks.get(blob.digest, (asyncio.Lock(), 0))
        self._blob_locks[blob.digest] = (lock, users + 1)
        try:
            async with lock:  # a second pull of the same layer waits for the first, then finds it done
                async for progress in self._blob_locked(client, base, blob, status):
                    yield progress
        finally:
            lock, users = self._blob_locks[blob.digest]
            if users == 1:
                del self._blob_locks[blob.digest]
            else:
                self._blob_locks[blob.digest] = (lock, users - 1)

    async def _blob_locked(self, client: "_Client", base: str, blob: Layer, status: str) -> AsyncIterator[Progress]:
        if self.store.has_blob(blob.digest):
            size = self.store.blob_path(blob.digest).stat().st_size
            yield Progress(status, blob.digest, size, size)
            return
        partial = self.store.partial_path(blob.digest)
        partial.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, ATTEMPTS_PER_BLOB + 1):
            try:
                async for completed in self._download(client, f"{base}/blobs/{blob.digest}", blob):
                    yield Progress(status, blob.digest, blob.size, completed)
                break
            except (aiohttp.ClientError, TimeoutError) as exc:
                done = partial.stat().st_size if partial.is_file() else 0
                log.warning("pulling %s: %s (attempt %d, %d bytes kept)", blob.digest, exc, attempt, done)
                if attempt == ATTEMPTS_PER_BLOB:
                    raise PullFailed(
                        f"registry {client.host} unreachable while pulling {blob.digest[7:19]}: "
                        f"{_describe(exc)}; {done} of {blob.size} bytes are kept, pull again to resume"
                    ) from exc
                await asyncio.sleep(attempt)

    async def _download(self, client: "_Client", url: str, blob: Layer) -> AsyncIterator[int]:
        """Appends to the partial file from where it ends; yields the bytes held so far."""
        partial = self.store.partial_path(blob.digest)
        offset = partial.stat().st_size if partial.is_file() else 0
        if offset > blob.size:
            partial.unlink()
            offset = 0
        if offset == blob.size:
            yield offset
            return
        async with await client.get(url, {"Range": f"bytes={offset}-"} if offset else {}) as response:
            await _raise_for_status(response, f"pull {blob.digest[7:19]}")
            if response.status != 206:
                offset = 0  # the registry sent the whole blob
            elif not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
                raise PullFailed(f"registry answered a different range than asked for {blob.digest[7:19]}")
            last = 0.0
            with partial.open("r+b" if offset else "wb") as handle:
                handle.seek(offset)
                handle.truncate()
                async for chunk in response.content.iter_chunked(READ_SIZE):
                    offset += len(chunk)
                    if offset > blob.size:
                        handle.close()
                        partial.unlink(missing_ok=True)
                        raise PullFailed(f"registry sent more than {blob.size} bytes for {blob.digest}; deleted")
                    handle.write(chunk)
                    if time.monotonic() - last >= PROGRESS_EVERY:
                        last = time.monotonic()
                        yield offset
        if offset < blob.size:
            raise aiohttp.ClientPayloadError(f"connection closed after {offset} of {blob.size} bytes")
        yield offset

    def _verify(self, blob: Layer) -> None:
        """verifyBlob: the whole file's sha256 against its digest; a mismatch is deleted (download again)."""
        if self.store.has_blob(blob.digest):
            return
        partial = self.store.partial_path(blob.digest)
        sha = hashlib.sha256()
        try:
            with partial.open("rb") as handle:
                for block in iter(lambda: handle.read(READ_SIZE), b""):
                    sha.update(block)
        except FileNotFoundError:
            if self.store.has_blob(blob.digest):  # a concurrent pull of the same layer verified it first
                return
            raise PullFailed(f"layer {blob.digest} vanished before it was verified; pull again") from None
        actual = f"sha256:{sha.hexdigest()}"
        if actual != blob.digest:
            partial.unlink(missing_ok=True)
            raise PullFailed(
                f"digest mismatch, file must be downloaded again: want {blob.digest}, got {actual} "
                "(the layer was deleted)"
            )
        try:
            os.replace(partial, self.store.blob_path(blob.digest))
        except FileNotFoundError:
            if not self.store.has_blob(blob.digest):
                raise


class _Client:
    """GETs against one registry host, answering its Bearer challenge once per request (makeRequestWithRetry)."""

    def __init__(self, session: aiohttp.ClientSession, host: str) -> None:
        self.session = session
        self.host = host
        self.token: str | None = None

    async def get(self, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        for _ in range(2):
            sent = {**headers, **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
            response = await self.session.get(url, headers=sent)
            if response.status != 401:
                return response
            challenge = response.headers.get("WWW-Authenticate", "")
            response.release()
            self.token = await self._token(challenge)
        raise PullFailed("pull model manifest: unauthorized: access denied")

    async def _token(self, header: str) -> str:
        challenge = parse_challenge(header)
        realm = urlsplit(challenge.get("realm", ""))
        if realm.netloc != self.host or realm.scheme not in ("http", "https"):
            raise PullFailed(f"realm host {realm.netloc!r} does not match original host {self.host!r}")
        # Ollama signs this request with the user's key; a registry without key auth accepts it unsigned.
        query = {
            "service": challenge.get("service", ""),
            "scope": challenge.get("scope", ""),
            "ts": str(int(time.time())),
            "nonce": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode(),
        }
        url = realm._replace(query=(realm.query + "&" if realm.query else "") + urlencode(query)).geturl()
        async with self.session.get(url) as response:
            body = await read_bounded(response, MAX_TOKEN_BYTES)
            if response.status >= 400:
                raise PullFailed(
                    f"registry token: {response.status}: {body[:MAX_ERROR_BYTES].decode(errors='replace')}"
                )
        try:
            token = json.loads(body)["token"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PullFailed("registry token: the answer has no token") from exc
        if not isinstance(token, str) or not token:
            raise PullFailed("registry token: the answer has no token")
        return token


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body (aiohttp's read(n) returns what has arrived, not n)."""
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) >= limit:
            return bytes(data[:limit])
    return bytes(data)


async def _raise_for_status(response: aiohttp.ClientResponse, what: str) -> None:
    if response.status >= 400:
        body = (await read_bounded(response, MAX_ERROR_BYTES)).decode(errors="replace")
        raise PullFailed(f"{what}: {response.status}: {body}")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _unique(blobs: list[Layer]) -> list[Layer]:
    seen: dict[str, Layer] = {}
    for blob in blobs:
        seen.setdefault(blob.digest, blob)
    return list(seen.values())
