"""RAG: collections, documents (multipart upload, several files per request), ingestion jobs and queries.

A collection is its owner's: others get 404, unless it is shared, then they may read it (list, search, chat)
but not change it (403). An administrator may read and change every collection. A job is its starter's.
"""

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from agent_host.api.errors import error_responses
from agent_host.deps import CurrentUserDep, RagServiceDep, SettingsDep
from agent_host.rag.multipart import read_files
from agent_host.rag.schemas import (
    CollectionCreate,
    CollectionPublic,
    CollectionUpdate,
    DocumentPublic,
    JobPublic,
    QueryRequest,
    QueryResult,
    UploadResult,
)

router = APIRouter(prefix="/rag", tags=["rag"], responses=error_responses(403, 404, 409, 413, 422, 503))
UPLOAD_PATH = r"/rag/collections/[^/]+/documents"

UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": UploadResult, "description": "wait=true: the job finished; or nothing new to index"},
    202: {"model": UploadResult, "description": "queued: follow the Location header (GET /rag/jobs/{id})"},
    403: {"description": "a collection shared with you read-only"},
    404: {"description": "no such collection (or another person's, not shared)"},
    413: {
        "description": "every file rejected (the first one over RAG_MAX_FILE_BYTES), too many files, or a body over"
        " RAG_MAX_UPLOAD_BYTES"
    },
    415: {"description": "every file rejected, the first one of an unsupported type"},
    422: {
        "description": "every file rejected, the first one unreadable (empty, scanned, encrypted, over the parse"
        " time limit), or a body that is not multipart/form-data with `files` parts"
    },
}
# The body is read as a stream (rag/multipart.py), not by FastAPI, so its schema is declared here.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                }
            }
        },
    }
}


@router.post("/collections", status_code=201)
async def create_collection(body: CollectionCreate, rag: RagServiceDep, person: CurrentUserDep) -> CollectionPublic:
    """A new collection of the person's; names are global, so one anybody has taken is a 409."""
    return await rag.create_collection(body, person)


@router.get("/collections")
async def list_collections(rag: RagServiceDep, person: CurrentUserDep, all: bool = False) -> list[CollectionPublic]:
    """The person's own collections and the shared ones; `all=true` (administrators): everyone's."""
    return await rag.list_collections(person, everyone=all)


@router.get("/collections/{name}")
async def get_collection(name: str, rag: RagServiceDep, person: CurrentUserDep) -> CollectionPublic:
    return await rag.readable(name, person)


@router.patch("/collections/{name}")
async def update_collection(
    name: str, body: CollectionUpdate, rag: RagServiceDep, person: CurrentUserDep
) -> CollectionPublic:
    """Shares the collection with everyone, read-only (or stops sharing it): its owner or an administrator."""
    return await rag.set_shared(name, body.shared, person)


@router.delete("/collections/{name}", status_code=204)
async def delete_collection(name: str, rag: RagServiceDep, person: CurrentUserDep) -> Response:
    await rag.delete_collection(name, person)
    return Response(status_code=204)


@router.get("/collections/{name}/documents")
async def list_documents(name: str, rag: RagServiceDep, person: CurrentUserDep) -> list[DocumentPublic]:
    return await rag.list_documents(name, person)


@router.post(
    "/collections/{name}/documents", response_model=UploadResult, responses=UPLOAD_RESPONSES, openapi_extra=UPLOAD_BODY
)
async def upload_documents(
    name: str, request: Request, rag: RagServiceDep, settings: SettingsDep, person: CurrentUserDep, wait: bool = False
) -> Response:
    """Files go through one job; each gets its own result, and a bad file never stops the others."""
    await rag.writable(name, person)  # a 404 or 403 before a large body is read
    content_type = request.headers.get("content-type", "")
    try:
        files = await read_files(request.stream(), content_type, settings.rag_max_file_bytes, settings.rag_max_files)
    except ClientDisconnect:  # or the body went over its limit: the middleware has answered 413 already
        return Response(status_code=400)
    result = await rag.upload(name, files, wait, person)
    body = result.model_dump(mode="json")
    rejected = [f for f in result.files if f.status == "rejected" and f.error is not None]
    if result.job is None and rejected and len(rejected) == len(result.files):
        first = rejected[0].error
        assert first is not None
        return JSONResponse({"error": {"type": first.type, "message": first.message}, **body}, first.status)
    if result.job is None or wait:
        return JSONResponse(body, 200)
    return JSONResponse(body, 202, headers={"Location": f"/rag/jobs/{result.job.id}"})


@router.delete("/collections/{name}/documents/{document_id}", status_code=204)
async def delete_document(name: str, document_id: str, rag: RagServiceDep, person: CurrentUserDep) -> Response:
    await rag.delete_document(name, document_id, person)
    return Response(status_code=204)


@router.post("/collections/{name}/documents/{document_id}/reindex", status_code=202)
async def reindex_document(
    name: str, document_id: str, rag: RagServiceDep, person: CurrentUserDep, response: Response
) -> JobPublic:
    job = await rag.reindex(name, document_id, person)
    response.headers["Location"] = f"/rag/jobs/{job.id}"
    return job


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, rag: RagServiceDep, person: CurrentUserDep) -> JobPublic:
    """A job the person started; anyone else's is a 404."""
    return await rag.job(job_id, person)


@router.post("/query")
async def query(body: QueryRequest, rag: RagServiceDep, person: CurrentUserDep) -> QueryResult:
    """Searches collections the person may read (their own, shared ones)."""
    return await rag.query(body, person)
