"""Request and response bodies of /auth, /users and /usage (the accounts' own models are reused as they are)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from agent_host.schemas import StoredText
from genailabs_accounts import rules
from genailabs_accounts.models import ApiKeyPublic, PersonUsage, Role

# StoredText: no NUL characters or lone surrogates, which PostgreSQL and argon2 would answer with a 500.
Login = Annotated[StoredText, Field(min_length=1, max_length=rules.MAX_LOGIN)]
# Bounded well above any real password: argon2 hashes whatever it is given, so a megabyte would cost CPU.
Password = Annotated[StoredText, Field(min_length=1, max_length=1024)]
ModelName = Annotated[StoredText, Field(min_length=1, max_length=rules.MAX_MODEL_NAME)]
Rpm = Annotated[int, Field(ge=1, le=rules.MAX_RPM)]
Budget = Annotated[float, Field(ge=0, le=rules.MAX_BUDGET)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Body):
    login: Login
    password: Password


class ApiKeyCreate(Body):
    name: Annotated[StoredText, Field(min_length=1, max_length=rules.MAX_KEY_NAME)]


class ApiKeyCreated(BaseModel):
    """The key itself is in this answer only: the host keeps its hash."""

    key: str
    api_key: ApiKeyPublic


class UserCreate(Body):
    login: Login
    password: Password
    name: Annotated[StoredText, Field(max_length=rules.MAX_NAME)] = ""
    role: Role = "user"
    models: Annotated[list[ModelName], Field(max_length=rules.MAX_MODELS)] = []
    rpm: Rpm | None = None
    max_budget: Budget | None = None


class UserUpdate(Body):
    """Only the fields sent change; `rpm` or `max_budget` null lifts that limit, `models` [] allows every model."""

    role: Role | None = None
    disabled: bool | None = None
    models: Annotated[list[ModelName], Field(max_length=rules.MAX_MODELS)] | None = None
    rpm: Rpm | None = None
    max_budget: Budget | None = None


class PasswordReset(Body):
    password: Password


class UsageReport(BaseModel):
    since: datetime
    usage: list[PersonUsage]
