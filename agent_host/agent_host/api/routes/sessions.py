"""Sessions: create, list, read, rename, delete, and their messages."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from agent_host.api.errors import error_responses
from agent_host.deps import SessionStoreDep
from agent_host.schemas import MessagePublic, SessionCreate, SessionPublic, SessionUpdate

router = APIRouter(prefix="/sessions", tags=["sessions"], responses=error_responses(404, 409, 413, 422, 503))


@router.post("", status_code=201)
async def create_session(body: SessionCreate, store: SessionStoreDep) -> SessionPublic:
    return await store.create(body)


@router.get("")
async def list_sessions(
    store: SessionStoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[SessionPublic]:
    return await store.list_sessions(limit)


@router.get("/{session_id}")
async def get_session(session_id: str, store: SessionStoreDep) -> SessionPublic:
    return await store.get(session_id)


@router.patch("/{session_id}")
async def update_session(session_id: str, body: SessionUpdate, store: SessionStoreDep) -> SessionPublic:
    return await store.update(session_id, body)


@router.delete("/{session_id}", status_code=204)
async def delete_session(session_id: str, store: SessionStoreDep) -> Response:
    await store.delete(session_id)
    return Response(status_code=204)


@router.get("/{session_id}/messages")
async def list_messages(session_id: str, store: SessionStoreDep) -> list[MessagePublic]:
    return await store.messages(session_id)
