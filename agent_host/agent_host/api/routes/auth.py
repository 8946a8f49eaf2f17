"""Signing in and out, who am I, and one's own personal API keys (shown once, stored hashed, revocable)."""

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from agent_host.api.errors import error_responses
from agent_host.deps import CurrentUserDep, PeopleDep, bearer_token
from agent_host.people.schemas import ApiKeyCreate, ApiKeyCreated, LoginRequest
from genailabs_accounts.models import Account, ApiKeyPublic, SignIn

router = APIRouter(prefix="/auth", tags=["auth"])
KeyId = Annotated[str, Path(max_length=64)]


@router.post("/login", responses=error_responses(401, 422, 429, 503))
async def login(body: LoginRequest, people: PeopleDep) -> SignIn:
    """A sign-in token (`gls_...`, sent as `Authorization: Bearer`) that expires after SESSION_IDLE_MINUTES idle."""
    return await people.sign_in(body.login, body.password)


@router.post("/logout", status_code=204, responses=error_responses(401, 503))
async def logout(request: Request, user: CurrentUserDep, people: PeopleDep) -> Response:
    """Ends the sign-in token this request carries: it is refused from now on (a personal API key stays valid
    until it is revoked with DELETE /auth/keys/{id})."""
    await people.sign_out(bearer_token(request) or "")
    return Response(status_code=204)


@router.get("/me", responses=error_responses(401, 503))
async def me(user: CurrentUserDep) -> Account:
    return user


@router.get("/keys", responses=error_responses(401, 503))
async def list_keys(user: CurrentUserDep, people: PeopleDep) -> list[ApiKeyPublic]:
    return await people.api_keys(user)


@router.post("/keys", status_code=201, responses=error_responses(401, 422, 503))
async def create_key(body: ApiKeyCreate, user: CurrentUserDep, people: PeopleDep) -> ApiKeyCreated:
    """A personal API key (`glk_...`) for one's own scripts: `key` is in this answer only."""
    return await people.create_api_key(user, body.name)


@router.delete("/keys/{key_id}", status_code=204, responses=error_responses(401, 404, 422, 503))
async def revoke_key(key_id: KeyId, user: CurrentUserDep, people: PeopleDep) -> Response:
    """Revokes one of one's own keys; another person's key id is 404, as an unknown one is."""
    await people.revoke_api_key(user, key_id)
    return Response(status_code=204)
