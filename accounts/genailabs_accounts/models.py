"""What accounts hands out: people, their listings, API keys, sign-ins and usage (never a hash)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["admin", "user"]
ROLES: tuple[Role, ...] = ("admin", "user")


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    login: str
    name: str
    role: Role
    disabled: bool
    created_at: datetime
    last_seen_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class AccountListing(Account):
    """An account with the limits and spend of its proxy key (empty models: every model)."""

    models: list[str] = []
    rpm: int | None = None
    max_budget: float | None = None
    spend: float = 0.0


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class SignIn(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: str
    account: Account
    idle_expires_at: datetime


class PersonUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: str
    login: str
    model: str
    requests: int
    failures: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
