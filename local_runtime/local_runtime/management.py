"""The store seen through the catalog (builtins and loose GGUFs are models too) and the pool (a model in use
is not deleted or replaced under its requests): what may be replaced, and Ollama's /api/delete."""

from local_runtime.catalog import Catalog
from local_runtime.details import MetadataCache
from local_runtime.errors import Forbidden, InvalidRequest, ModelNotFound, RuntimeServiceError
from local_runtime.pool import ModelPool
from local_runtime.registry import Puller
from local_runtime.store import Manifest, ModelName, ModelStore, check_digest


class ModelInUse(RuntimeServiceError):
    status_code = 409


class InsufficientStorage(RuntimeServiceError):
    status_code = 507


def blob_digest(text: str) -> str:
    """A blob route's digest: Ollama accepts `sha256:<hex>` and `sha256-<hex>`."""
    return check_digest(text.strip().lower().replace("sha256-", "sha256:", 1))


class ModelManager:
    """What a create, copy or delete may touch, and delete itself."""

    def __init__(
        self,
        store: ModelStore,
        catalog: Catalog,
        metadata: MetadataCache,
        pool: ModelPool,
        puller: Puller,
        free_margin: int,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.metadata = metadata
        self.pool = pool
        self.puller = puller
        self.free_margin = free_margin

    def refuse_busy(self, display: str) -> None:
        """409 while requests run on the model or wait for it: deleting or replacing it would break them."""
        busy = self.pool.busy(display)
        if busy:
            raise ModelInUse(f"model '{display}' is in use by {busy} request(s); try again when they finish")

    async def release(self, display: str) -> None:
        """Unloads the model's idle runners (as `ollama rm` does first), or 409 while it is in use."""
        self.refuse_busy(display)
        if any(slot.model.name == display for slot in self.pool.loaded()):
            await self.pool.load(display, 0, 0)

    def manifest_or_none(self, name: ModelName) -> Manifest | None:
        try:
            return self.store.read_manifest(name)
        except ModelNotFound:
            return None

    def check_free_space(self, size: int) -> None:
        free = self.store.free_bytes()
        if size + self.free_margin > free:
            raise InsufficientStorage(
                f"not enough disk space: {size} bytes needed plus a margin of {self.free_margin}, {free} free"
            )

    def prune(self, old: Manifest | None) -> None:
        """Removes the blobs of a replaced manifest that nothing references any more (Ollama's RemoveLayers)."""
        if old is None:
            return
        keep = self.store.referenced_digests()
        for blob in old.blobs:
            if blob.digest not in keep:
                self.store.blob_path(blob.digest).unlink(missing_ok=True)

    async def delete(self, name: str) -> None:
        try:
            parsed = self.store.parse_name(name)
        except InvalidRequest:
            raise InvalidRequest(f'name "{name}" is invalid') from None
        display = self.store.display(parsed)
        if display in self.catalog.builtins:
            raise Forbidden(f"model '{display}' is built into the runtime and cannot be deleted")
        loose = None if self.store.manifest_path(parsed).is_file() else self.catalog.loose_file(display)
        if loose is None and not self.store.manifest_path(parsed).is_file():
            raise ModelNotFound(name)
        await self.release(display)
        if loose is not None:
            loose.unlink()
        else:
            self.store.delete(display)
