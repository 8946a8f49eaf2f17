"""Bounds on what people type: logins, names, roles, API key names and proxy limits."""

import re
from collections.abc import Iterable

from genailabs_accounts.errors import BadAccountInput
from genailabs_accounts.models import ROLES, Role

MAX_LOGIN = 64
MAX_NAME = 200
MAX_KEY_NAME = 100
MAX_MODELS = 100
MAX_MODEL_NAME = 200
MAX_RPM = 1_000_000
MAX_BUDGET = 1_000_000_000.0
_LOGIN = re.compile(r"^[a-z0-9._@-]{1,64}$")


def normalise_login(login: str) -> str:
    """The login as stored: lower-cased; BadAccountInput unless 1-64 of `A-Z a-z 0-9 . _ @ -`."""
    value = login.strip().lower() if len(login) <= 4 * MAX_LOGIN else ""
    if not _LOGIN.match(value):
        raise BadAccountInput(f"a login is 1 to {MAX_LOGIN} characters among letters, digits and . _ @ -")
    return value


def check_name(name: str) -> str:
    value = name.strip()
    if len(value) > MAX_NAME or any(ord(char) < 32 for char in value):
        raise BadAccountInput(f"a name is at most {MAX_NAME} printable characters")
    return value


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise BadAccountInput(f"role must be one of: {', '.join(ROLES)}")


def check_key_name(name: str) -> str:
    value = name.strip()
    if not value or len(value) > MAX_KEY_NAME or any(ord(char) < 32 for char in value):
        raise BadAccountInput(f"an API key name is 1 to {MAX_KEY_NAME} printable characters")
    return value


def check_limits(
    models: Iterable[str], rpm: int | None, max_budget: float | None
) -> tuple[list[str], int | None, float | None]:
    """The proxy limits of a person, checked; an empty model list means every model."""
    names = list(dict.fromkeys(model.strip() for model in models if model.strip()))
    if len(names) > MAX_MODELS or any(len(model) > MAX_MODEL_NAME for model in names):
        raise BadAccountInput(f"at most {MAX_MODELS} models of at most {MAX_MODEL_NAME} characters each")
    if rpm is not None and not 1 <= rpm <= MAX_RPM:
        raise BadAccountInput(f"rpm must be between 1 and {MAX_RPM}")
    if max_budget is not None and not 0 <= max_budget <= MAX_BUDGET:
        raise BadAccountInput(f"max_budget must be between 0 and {MAX_BUDGET:.0f}")
    return names, rpm, max_budget
