"""Creating and copying models in the store, as Ollama's /api/create and /api/copy do.

Everything a request can get wrong is checked before anything is written (`plan_create`), so a bad request
is a 4xx with nothing changed; the manifest is written last and atomically, so a create that fails midway
leaves every model as it was, and the blobs it wrote that nothing references are removed again."""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_runtime.details import model_details
from local_runtime.errors import InvalidRequest, ModelNotFound, RuntimeServiceError
from local_runtime.gotemplate import TemplateUnsupported, compile_template
from local_runtime.management import ModelManager, blob_digest
from local_runtime.store import (
    MAX_TEXT_LAYER_BYTES,
    MEDIA_CONFIG,
    MEDIA_LICENSE,
    MEDIA_MESSAGES,
    MEDIA_MODEL,
    MEDIA_PARAMS,
    MEDIA_SYSTEM,
    MEDIA_TEMPLATE,
    Layer,
    ModelName,
)

GGUF_MAGIC = b"GGUF"
# A params layer is a small JSON object; a bigger one is not read.
MAX_PARAMS_BYTES = 1 << 20


class SourceNotFound(RuntimeServiceError):
    """Ollama's copy says `model "x" not found` (quoted as Go's %q), with 404."""

    status_code = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"model {json.dumps(name)} not found")


@dataclass
class CreateSpec:
    """A create request's fields (Ollama's CreateRequest, the Modelfile's commands already folded in)."""

    model: str
    source: str | None = None
    files: dict[str, str] | None = None
    template: str | None = None
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    licenses: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)


@dataclass
class CreatePlan:
    """A checked create: the name, the weights (a stored blob or a GGUF file to import) and what goes on top."""

    name: ModelName
    spec: CreateSpec
    base: list[Layer]  # layers already in the store (the source model's, or an uploaded GGUF)
    metadata: dict[str, str]
    import_path: Path | None = None
    import_digest: str | None = None
    pull: ModelName | None = None  # a source model that is nowhere here: pulled first, as Ollama does


def check_template(template: str) -> None:
    """Every `{{` closed by a `}}` (what Go's parser would first trip on); Ollama answers "template error"."""
    position = 0
    while (start := template.find("{{", position)) != -1:
        end = template.find("}}", start + 2)
        if end == -1:
            line = template.count("\n", 0, start) + 1
            raise InvalidRequest(f"template error: template: :{line}: unclosed action")
        position = end + 2


def is_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return f"sha256:{sha.hexdigest()}"


def check_template_use(plan: CreatePlan) -> None:
    """A template this runtime would refuse at every chat is refused now. With a GGUF that has its own chat
    template the runtime uses that one (see runtime.py), so the template layer is only stored."""
    template = plan.spec.template
    if template is None or "tokenizer.chat_template" in plan.metadata:
        return
    try:
        compile_template(template)
    except TemplateUnsupported as exc:
        raise InvalidRequest(
            f"template cannot be used by this runtime: {exc} (the GGUF has no chat template of its own, and only "
            "the common forms of Ollama's Go templates are read)"
        ) from None


class ModelCreator(ModelManager):
    """Creates models (from a blob, a GGUF on disk, a builtin or a stored model, pulling it when it is
    nowhere here) and copies them; deletes through ModelManager."""

    async def copy(self, source: str, destination: str) -> None:
        try:
            src = self.store.parse_name(source)
        except InvalidRequest:
            raise InvalidRequest(f'source "{source}" is invalid') from None
        try:
            dst = self.store.parse_name(destination)
        except InvalidRequest:
            raise InvalidRequest(f'destination "{destination}" is invalid') from None
        known = self.manifest_or_none(src) is not None or self.store.display(src) in self.catalog.scan()
        if not known:
            raise SourceNotFound(source)
        if src == dst:
            return
        self.catalog.refuse_shadowing(dst)
        if self.manifest_or_none(src) is None:
            # A builtin or a loose GGUF: imported into the store under the new name.
            plan = await self.plan_create(CreateSpec(model=destination, source=self.store.display(src)))
            async for _ in self.run_create(plan):
                pass
            return
        display = self.store.display(dst)
        await self.release(display)
        old = self.manifest_or_none(dst)
        self.store.copy(self.store.display(src), display)
        self.prune(old)

    async def plan_create(self, spec: CreateSpec) -> CreatePlan:
        """Checks the whole request against the store; raises the 4xx before anything is written."""
        try:
            name = self.store.parse_name(spec.model)
        except InvalidRequest:
            raise InvalidRequest("invalid model name") from None
        self.catalog.refuse_shadowing(name)
        self.refuse_busy(self.store.display(name))
        if spec.template is not None:
            check_template(spec.template)
        texts = [("template", spec.template), ("system", spec.system), *(("license", text) for text in spec.licenses)]
        for field_name, text in texts:
            if text is not None and len(text.encode()) > MAX_TEXT_LAYER_BYTES:
                raise InvalidRequest(f"{field_name} is larger than {MAX_TEXT_LAYER_BYTES} bytes")
        for message in spec.messages:
            if message.get("role") not in ("system", "user", "assistant"):
                raise InvalidRequest('message role must be one of "system", "user", or "assistant"')
        if spec.files is not None:
            plan = await self._plan_from_files(name, spec, spec.files)
        elif spec.source:
            plan = await self._plan_from_source(name, spec, spec.source)
        else:
            raise InvalidRequest("neither 'from' or 'files' was specified")
        if plan.pull is None:
            check_template_use(plan)
        return plan

    async def _gguf_metadata(self, path: Path) -> dict[str, str]:
        if not await asyncio.to_thread(is_gguf, path):
            raise InvalidRequest("supplied file was not in GGUF format")
        try:
            return (await asyncio.to_thread(self.metadata.read, path)).metadata
        except Exception as exc:  # the gguf reader raises whatever a truncated or corrupt file makes it raise
            raise InvalidRequest(f"invalid GGUF file: {type(exc).__name__}: {exc}"[:500]) from None

    async def _plan_from_files(self, name: ModelName, spec: CreateSpec, files: dict[str, str]) -> CreatePlan:
        if not files:
            raise InvalidRequest("no files provided to convert")
        for path, digest in files.items():
            parts = Path(path).parts
            if not path or path.startswith(("/", "\\")) or ".." in parts or "\\" in path:
                raise InvalidRequest("file path must be relative")
            if not isinstance(digest, str) or not digest:
                raise InvalidRequest("invalid digest format")
            blob_digest(digest)
        if len(files) > 1:
            raise InvalidRequest("only one GGUF file per model is supported by this runtime")
        digest = blob_digest(next(iter(files.values())))
        return await self._plan_from_blob(name, spec, digest)

    async def _plan_from_blob(self, name: ModelName, spec: CreateSpec, digest: str) -> CreatePlan:
        path = self.store.blob_path(digest)
        if not path.is_file():
            raise InvalidRequest(f'blob "{digest}" not found: upload it first with POST /api/blobs/{digest}')
        metadata = await self._gguf_metadata(path)
        return CreatePlan(name, spec, [Layer(MEDIA_MODEL, digest, path.stat().st_size)], metadata)

    async def _plan_from_source(
        self, name: ModelName, spec: CreateSpec, source: str, may_pull: bool = True
    ) -> CreatePlan:
        if source.startswith("@"):  # older Ollama CLIs name an uploaded blob as FROM @sha256:<hex>
            return await self._plan_from_blob(name, spec, blob_digest(source[1:]))
        if source.startswith(("/", "~", "./", "../")) or source.lower().endswith(".gguf"):
            path = Path(source).expanduser()
            path = path if path.is_absolute() else self.catalog.models_dir / path
            if not path.is_file():
                raise InvalidRequest(f'GGUF file "{source}" not found on the runtime\'s machine')
            return await self._plan_import(name, spec, path, None)
        try:
            source_name = self.store.parse_name(source)
        except InvalidRequest:
            raise InvalidRequest("invalid model name") from None
        manifest = self.manifest_or_none(source_name)
        if manifest is not None:
            weights = next((layer for layer in manifest.layers if layer.media_type == MEDIA_MODEL), None)
            if weights is None or not self.store.has_blob(weights.digest):
                raise InvalidRequest(f"model '{source}' has no model layer in the store")
            metadata = await self._gguf_metadata(self.store.blob_path(weights.digest))
            return CreatePlan(name, spec, list(manifest.layers), metadata)
        model = self.catalog.scan().get(self.catalog.key(self.store.display(source_name)))
        if model is None:
            if may_pull:
                return CreatePlan(name, spec, [], {}, pull=source_name)
            raise ModelNotFound(source)
        digest = "sha256:" + await asyncio.to_thread(self.catalog.digest, model)
        return await self._plan_import(name, spec, model.path, digest)

    async def _plan_import(self, name: ModelName, spec: CreateSpec, path: Path, digest: str | None) -> CreatePlan:
        metadata = await self._gguf_metadata(path)
        if digest is None or not self.store.has_blob(digest):
            self.check_free_space(path.stat().st_size)
        return CreatePlan(name, spec, [], metadata, import_path=path, import_digest=digest)

    async def run_create(self, plan: CreatePlan) -> AsyncIterator[dict[str, Any]]:
        """Ollama's status lines while the layers and the manifest are written; `success` at the end."""
        display = self.store.display(plan.name)
        created: list[str] = []
        done = False
        with ExitStack() as pins:

            async def put(data: bytes, media_type: str) -> Layer:
                digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
                pins.enter_context(self.store.pinned([digest]))
                if self.store.has_blob(digest):
                    return Layer(media_type, digest, len(data))
                created.append(digest)

                async def chunks() -> AsyncIterator[bytes]:
                    yield data

                await self.store.write_blob(digest, chunks())
                return Layer(media_type, digest, len(data))

            try:
                if plan.pull is not None:
                    async for step in self.puller.pull(plan.pull):
                        if step.status != "success":  # the create's own success comes at its end
                            yield step.body()
                    plan = await self._plan_from_source(plan.name, plan.spec, plan.spec.source or "", may_pull=False)
                    check_template_use(plan)
                if plan.spec.template is not None and "tokenizer.chat_template" in plan.metadata:
                    yield {"status": "the GGUF's own chat template is used here; the template is stored as a layer"}
                layers = list(plan.base)
                if plan.import_path is not None or plan.spec.files:
                    yield {"status": "parsing GGUF"}
                if plan.import_path is not None:
                    digest = plan.import_digest
                    if digest is None:
                        digest = await asyncio.to_thread(file_digest, plan.import_path)
                    pins.enter_context(self.store.pinned([digest]))
                    if not self.store.has_blob(digest):
                        created.append(digest)
                        yield {"status": f"creating new layer {digest}"}
                        await self.store.write_blob(digest, plan.import_path)
                    else:
                        yield {"status": f"using existing layer {digest}"}
                    layers = [Layer(MEDIA_MODEL, digest, self.store.blob_path(digest).stat().st_size)]
                else:
                    pins.enter_context(self.store.pinned([layer.digest for layer in layers]))
                    for layer in layers:
                        yield {"status": f"using existing layer {layer.digest}"}
                for layer in await self._top_layers(plan, layers, put):
                    yield {"status": f"creating new layer {layer.digest}"}
                    layers = [old for old in layers if old.media_type != layer.media_type] + [layer]
                for license_text in plan.spec.licenses:
                    layer = await put(license_text.encode(), MEDIA_LICENSE)
                    yield {"status": f"creating new layer {layer.digest}"}
                    layers.append(layer)
                config = await put(self._config(plan, layers), MEDIA_CONFIG)
                yield {"status": "writing manifest"}
                await self.release(display)
                old = self.manifest_or_none(plan.name)
                self.store.write_manifest(display, layers, config)
                done = True
            finally:
                if not done:
                    pins.close()
                    keep = self.store.referenced_digests()
                    for written in created:
                        if written not in keep:
                            self.store.blob_path(written).unlink(missing_ok=True)
        self.prune(old)
        yield {"status": "success"}

    async def _top_layers(self, plan: CreatePlan, base: list[Layer], put: Any) -> list[Layer]:
        """The template, system, params and messages layers this request replaces (params merge, new wins)."""
        spec, layers = plan.spec, []
        if spec.template is not None:
            layers.append(await put(spec.template.encode(), MEDIA_TEMPLATE))
        if spec.system is not None:
            layers.append(await put(spec.system.encode(), MEDIA_SYSTEM))
        if spec.parameters:
            merged = {**self._stored_params(base), **spec.parameters}
            layers.append(await put(json.dumps(merged).encode(), MEDIA_PARAMS))
        if spec.messages:
            layers.append(await put(json.dumps(spec.messages).encode(), MEDIA_MESSAGES))
        return layers

    def _stored_params(self, base: list[Layer]) -> dict[str, Any]:
        layer = next((layer for layer in base if layer.media_type == MEDIA_PARAMS), None)
        if layer is None or layer.size > MAX_PARAMS_BYTES:
            return {}
        try:
            stored = json.loads(self.store.blob_path(layer.digest).read_bytes())
        except (OSError, ValueError):
            return {}
        return stored if isinstance(stored, dict) else {}

    def _config(self, plan: CreatePlan, layers: list[Layer]) -> bytes:
        """Ollama's ConfigV2 for the model, from its GGUF's metadata."""
        details = model_details(plan.metadata)
        config = {
            "model_format": "gguf",
            "model_family": details.family,
            "model_families": details.families or [],
            "model_type": details.parameter_size,
            "file_type": details.quantization_level,
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
        }
        return json.dumps(config).encode()
