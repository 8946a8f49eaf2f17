"""Accounts, for admins: list with limits and spend, create, change role, state and limits, reset a password."""

import uuid

from fastapi import APIRouter, Response

from agent_host.api.errors import error_responses
from agent_host.deps import AdminDep, PeopleDep
from agent_host.people.schemas import PasswordReset, UserCreate, UserUpdate
from genailabs_accounts.models import AccountListing

router = APIRouter(prefix="/users", tags=["users"], responses=error_responses(401, 403))


@router.get("", responses=error_responses(503))
async def list_users(_admin: AdminDep, people: PeopleDep) -> list[AccountListing]:
    return await people.accounts()


@router.post("", status_code=201, responses=error_responses(409, 422, 503))
async def create_user(body: UserCreate, _admin: AdminDep, people: PeopleDep) -> AccountListing:
    """A new account and its proxy key (its models, rpm and budget)."""
    return await people.create(body)


@router.patch("/{account_id}", responses=error_responses(404, 409, 422, 503))
async def update_user(account_id: uuid.UUID, body: UserUpdate, _admin: AdminDep, people: PeopleDep) -> AccountListing:
    """Role, disabled (revokes the proxy key and ends sign-ins), models, rpm, max_budget; the last admin stays."""
    return await people.update(str(account_id), body)


@router.post("/{account_id}/password", status_code=204, responses=error_responses(404, 422, 503))
async def reset_password(account_id: uuid.UUID, body: PasswordReset, _admin: AdminDep, people: PeopleDep) -> Response:
    """A new password; the account's sign-ins end."""
    await people.reset_password(str(account_id), body.password)
    return Response(status_code=204)
