"""Ollama's model management: /api/create, /api/copy, /api/delete and /api/blobs/:digest, answered as
Ollama's server answers them (server/routes.go, server/create.go): empty 200s, NDJSON status lines, its errors."""

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from local_runtime.api.deps import RuntimeDep, json_body
from local_runtime.api.openapi import error_responses, request_body
from local_runtime.api.streaming import guarded, ndjson
from local_runtime.creation import CreateSpec, ModelCreator
from local_runtime.errors import InvalidRequest, RequestTooLarge
from local_runtime.management import InsufficientStorage, blob_digest
from local_runtime.modelfile import check_parameters, modelfile_request
from local_runtime.schemas import OllamaError
from local_runtime.store import check_digest

log = logging.getLogger("local_runtime.api")
router = APIRouter(prefix="/api", tags=["ollama"], responses=error_responses(OllamaError))
MORE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": OllamaError, "description": "the model is in use by running requests"},
    507: {"model": OllamaError, "description": "not enough free disk space"},
}


class CreateRequest(BaseModel):
    """Ollama's CreateRequest; `modelfile` is what clients before Ollama 0.5 send instead of the fields."""

    model: str = ""
    name: str = ""  # deprecated spelling of model
    stream: bool = True
    from_: str | None = Field(default=None, alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    system: str | None = None
    parameters: dict[str, Any] | None = None
    license: str | list[str] | None = None
    messages: list[dict[str, str]] | None = None
    quantize: str | None = None
    quantization: str | None = None  # deprecated spelling of quantize
    modelfile: str | None = None


class CopyRequest(BaseModel):
    source: str
    destination: str


class DeleteRequest(BaseModel):
    model: str = ""
    name: str = ""  # deprecated spelling of model


def get_manager(runtime: RuntimeDep) -> ModelCreator:
    return ModelCreator(
        runtime.catalog.store,
        runtime.catalog,
        runtime.metadata,
        runtime.pool,
        runtime.puller,
        runtime.settings.blob_free_margin,
    )


ManagerDep = Annotated[ModelCreator, Depends(get_manager)]


def create_spec(body: CreateRequest) -> CreateSpec:
    """The request's fields, a Modelfile's commands beneath them (a field given in JSON wins)."""
    if body.quantize or body.quantization:
        raise InvalidRequest("quantize is not supported by this runtime: create the model from a quantized GGUF")
    if body.adapters:
        raise InvalidRequest("adapters are not supported by this runtime")
    spec = CreateSpec(model=body.model or body.name)
    if body.modelfile is not None:
        parsed = modelfile_request(body.modelfile)
        if parsed.adapters:
            raise InvalidRequest("ADAPTER is not supported by this runtime")
        spec.source, spec.template, spec.system = parsed.source, parsed.template, parsed.system
        spec.parameters, spec.licenses, spec.messages = parsed.parameters, parsed.licenses, parsed.messages
    spec.source = body.from_ if body.from_ is not None else spec.source
    spec.files = body.files
    spec.template = body.template if body.template is not None else spec.template
    spec.system = body.system if body.system is not None else spec.system
    if body.parameters is not None:
        spec.parameters = {**spec.parameters, **check_parameters(body.parameters)}
    if body.license is not None:
        spec.licenses = [body.license] if isinstance(body.license, str) else body.license
    if body.messages is not None:
        spec.messages = body.messages
    return spec


@router.post("/create", openapi_extra=request_body(CreateRequest), responses=MORE_ERRORS)
async def create(
    body: Annotated[CreateRequest, Depends(json_body(CreateRequest))], manager: ManagerDep, request: Request
) -> Response:
    request.state.model = body.model or body.name
    plan = await manager.plan_create(create_spec(body))
    events = manager.run_create(plan)
    if body.stream:
        return ndjson(guarded(events, "create"))
    last: dict[str, Any] = {}
    async for event in events:
        last = event
    return JSONResponse(last)


@router.post("/copy", openapi_extra=request_body(CopyRequest), responses=MORE_ERRORS)
async def copy(body: Annotated[CopyRequest, Depends(json_body(CopyRequest))], manager: ManagerDep) -> Response:
    await manager.copy(body.source, body.destination)
    return Response(status_code=200)


@router.delete("/delete", openapi_extra=request_body(DeleteRequest), responses=MORE_ERRORS)
async def delete(
    body: Annotated[DeleteRequest, Depends(json_body(DeleteRequest))], manager: ManagerDep, request: Request
) -> Response:
    request.state.model = body.model or body.name
    await manager.delete(body.model or body.name)
    return Response(status_code=200)


@router.head("/blobs/{digest}", responses={200: {"description": "the blob is stored"}})
async def head_blob(digest: str, manager: ManagerDep) -> Response:
    if not manager.store.has_blob(blob_digest(digest)):
        return JSONResponse({"error": f'blob "{digest}" not found'}, status_code=404)
    return Response(status_code=200)


async def bounded(chunks: AsyncIterator[bytes], cap: int, room: int) -> AsyncIterator[bytes]:
    """The body, cut off with 413 past the cap or 507 past the disk's room, whichever comes first."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > cap:
            raise RequestTooLarge(f"blob is larger than {cap} bytes (RUNTIME_MAX_BLOB_BYTES)")
        if received > room:
            raise InsufficientStorage(f"not enough disk space for the blob: {max(room, 0)} bytes available")
        yield chunk


@router.post(
    "/blobs/{digest}",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {}}}}},
    responses={201: {"description": "the blob was stored"}, **MORE_ERRORS},
)
async def create_blob(digest: str, request: Request, runtime: RuntimeDep, manager: ManagerDep) -> Response:
    """Streams the body to a temp file while hashing it; renamed into blobs/ only when its sha256 matches."""
    digest = check_digest(blob_digest(digest))
    if manager.store.has_blob(digest):
        return Response(status_code=200)  # as Ollama: the body is not read
    cap = runtime.settings.max_blob_bytes
    room = manager.store.free_bytes() - runtime.settings.blob_free_margin
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isdigit() else None
    if declared is not None and declared > cap:
        raise RequestTooLarge(f"blob is larger than {cap} bytes (RUNTIME_MAX_BLOB_BYTES)")
    if declared is not None and declared > room:
        raise InsufficientStorage(f"not enough disk space for a blob of {declared} bytes: {max(room, 0)} available")
    try:
        await manager.store.write_blob(digest, bounded(request.stream(), cap, room))
    except OSError as exc:  # the disk filled up under us (ENOSPC) or the store is not writable
        raise InsufficientStorage(f"could not store the blob: {exc.strerror or exc}") from exc
    except ClientDisconnect:
        log.info("upload of %s cut off by the client; nothing kept", digest)
        return Response(status_code=400)  # nobody reads it: the client is gone
    return Response(status_code=201)
