"""RAG: collections, documents (multipart upload, several files per request), ingestion jobs and queries."""

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from agent_host.api.errors import error_responses
from agent_host.deps import RagServiceDep, SettingsDep
from agent_host.rag.multipart import read_files
from agent_host.rag.schemas import (
    CollectionCreate,
    CollectionPublic,
    DocumentPublic,
    JobPublic,
    QueryRequest,
    QueryResult,
    UploadResult,
)

router = APIRouter(prefix="/rag", tags=["rag"], responses=error_responses(404, 409, 413, 422, 503))
UPLOAD_PATH = r"/rag/collections/[^/]+/documents"

UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": UploadResult, "description": "wait=true: the job finished; or nothing new to index"},
    202: {"model": UploadResult, "description": "queued: follow the Location header (GET /rag/jobs/{id})"},
    404: {"description": "no such collection"},
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
async def create_collection(body: CollectionCreate, rag: RagServiceDep) -> CollectionPublic:
    return await rag.create_collection(body)


@router.get("/collections")
async def list_collections(rag: RagServiceDep) -> list[CollectionPublic]:
    return await rag.list_collections()


@router.get("/collections/{name}")
async def get_collection(name: str, rag: RagServiceDep) -> CollectionPublic:
    return await rag.get_collection(name)


@router.delete("/collections/{name}", status_code=204)
async def delete_collection(name: str, rag: RagServiceDep) -> Response:
    await rag.delete_collection(name)
    return Response(status_code=204)


@router.get("/collections/{name}/documents")
async def list_documents(name: str, rag: RagServiceDep) -> list[DocumentPublic]:
    return await rag.list_documents(name)


@router.post(
    "/collections/{name}/documents", response_model=UploadResult, responses=UPLOAD_RESPONSES, openapi_extra=UPLOAD_BODY
)
async def upload_documents(
    name: str, request: Request, rag: RagServiceDep, settings: SettingsDep, wait: bool = False
) -> Response:
    """Files go through one job; each gets its own result, and a bad file never stops the others."""
    await rag.get_collection(name)  # a 404 before a large body is read
    content_type = request.headers.get("content-type", "")
    try:
        files = await read_files(request.stream(), content_type, settings.rag_max_file_bytes, settings.rag_max_files)
    except ClientDisconnect:  # or the body went over its limit: the middleware has answered 413 already
        return Response(status_code=400)
    result = await rag.upload(name, files, wait)
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
async def delete_document(name: str, document_id: str, rag: RagServiceDep) -> Response:
    await rag.delete_document(name, document_id)
    return Response(status_code=204)


@router.post("/collections/{name}/documents/{document_id}/reindex", status_code=202)
async def reindex_document(name: str, document_id: str, rag: RagServiceDep, response: Response) -> JobPublic:
    job = await rag.reindex(name, document_id)
    response.headers["Location"] = f"/rag/jobs/{job.id}"
    return job


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, rag: RagServiceDep) -> JobPublic:
    return rag.job(job_id)


@router.post("/query")
async def query(body: QueryRequest, rag: RagServiceDep) -> QueryResult:
    return await rag.query(body)
