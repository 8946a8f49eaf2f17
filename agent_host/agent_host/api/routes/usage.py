"""What people used through the proxy, per model: one's own, or (admins, `?all=true`) everyone's per person."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from agent_host.api.errors import error_responses
from agent_host.deps import CurrentUserDep, PeopleDep, SettingsDep, require_admin
from agent_host.people.schemas import UsageReport

router = APIRouter(prefix="/usage", tags=["usage"])


@router.get("", responses=error_responses(401, 403, 422, 503))
async def usage(
    user: CurrentUserDep,
    people: PeopleDep,
    settings: SettingsDep,
    all: Annotated[bool, Query(description="everyone's, per person (admins only)")] = False,
    days: Annotated[int, Query(ge=1, le=3660, description="the period, in days up to now")] = 30,
) -> UsageReport:
    since = datetime.now(UTC) - timedelta(days=days)
    if all:
        await require_admin(user, settings)
        return await people.usage(since, None)
    return await people.usage(since, user)
