"""Sessions: create, list, read, rename, delete, and their one history: read, replace, delete, truncate.

Every session is its owner's: another person's is a 404 (administrators included).
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from agent_host.api.errors import error_responses
from agent_host.db import owner_id
from agent_host.deps import CurrentUserDep, PipelineDep, SessionStoreDep
from agent_host.schemas import MessagePublic, MessageUpdate, SessionCreate, SessionPublic, SessionUpdate

router = APIRouter(prefix="/sessions", tags=["sessions"], responses=error_responses(404, 409, 413, 422, 503))
# A message id (bigserial): bounded so an absurd one is a 422, not a database error.
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post("", status_code=201)
async def create_session(body: SessionCreate, store: SessionStoreDep, person: CurrentUserDep) -> SessionPublic:
    return await store.create(owner_id(person), body)


@router.get("")
async def list_sessions(
    store: SessionStoreDep, person: CurrentUserDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[SessionPublic]:
    """The person's sessions, most recently used first."""
    return await store.list_sessions(owner_id(person), limit)


@router.get("/{session_id}")
async def get_session(session_id: str, store: SessionStoreDep, person: CurrentUserDep) -> SessionPublic:
    return await store.get(owner_id(person), session_id)


@router.patch("/{session_id}")
async def update_session(
    session_id: str, body: SessionUpdate, store: SessionStoreDep, person: CurrentUserDep
) -> SessionPublic:
    return await store.update(owner_id(person), session_id, body)


@router.delete("/{session_id}", status_code=204)
async def delete_session(session_id: str, store: SessionStoreDep, person: CurrentUserDep) -> Response:
    await store.delete(owner_id(person), session_id)
    return Response(status_code=204)


@router.get("/{session_id}/messages")
async def list_messages(session_id: str, store: SessionStoreDep, person: CurrentUserDep) -> list[MessagePublic]:
    """The whole history, oldest first; an answer's `metadata` holds its `citations` and `context`."""
    return await store.messages(owner_id(person), session_id)


@router.patch("/{session_id}/messages/{message_id}")
async def replace_message(
    session_id: str,
    message_id: MessageId,
    body: MessageUpdate,
    store: SessionStoreDep,
    pipeline: PipelineDep,
    person: CurrentUserDep,
) -> MessagePublic:
    """Replaces one message's content (its tokens recounted); an edit the summary covers drops the summary."""
    owner = owner_id(person)
    session = await store.get(owner, session_id)
    tokens = pipeline.message_tokens(session.model, body.content)
    return await store.replace_message(owner, session_id, message_id, body.content, tokens)


@router.delete("/{session_id}/messages/{message_id}", status_code=204)
async def delete_message(
    session_id: str, message_id: MessageId, store: SessionStoreDep, person: CurrentUserDep
) -> Response:
    await store.delete_message(owner_id(person), session_id, message_id)
    return Response(status_code=204)


@router.delete("/{session_id}/messages", status_code=204)
async def delete_messages_after(
    session_id: str,
    store: SessionStoreDep,
    person: CurrentUserDep,
    after: Annotated[int, Query(ge=1, le=2**63 - 1, description="the message to keep; every later one goes")],
) -> Response:
    """Truncates the history after one message (then `regenerate: true` on a chat answers it again)."""
    await store.delete_after(owner_id(person), session_id, after)
    return Response(status_code=204)
