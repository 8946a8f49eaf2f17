"""Domain errors of the hub; auth.py maps them to HTTP answers at the edge."""

from datetime import datetime


class HubError(Exception):
    """Base class: `status_code` and `error_type` say how the proxy answers."""

    status_code = 500
    error_type = "hub_error"
    param: str | None = None


class MissingKey(HubError):
    status_code = 401
    error_type = "auth_error"
    param = "api_key"

    def __init__(self) -> None:
        super().__init__("missing API key: send `Authorization: Bearer sk-...`")


class UnknownKey(HubError):
    status_code = 401
    error_type = "auth_error"
    param = "api_key"

    def __init__(self, masked_key: str) -> None:
        super().__init__(f"invalid API key {masked_key}: no such key")


class RevokedKey(HubError):
    status_code = 401
    error_type = "auth_error"
    param = "api_key"

    def __init__(self, alias: str, revoked_at: datetime) -> None:
        super().__init__(f"API key '{alias}' was revoked at {revoked_at:%Y-%m-%d %H:%M:%S %Z}")


class ExpiredKey(HubError):
    status_code = 401
    error_type = "auth_error"
    param = "api_key"

    def __init__(self, alias: str, expires_at: datetime) -> None:
        super().__init__(f"API key '{alias}' expired at {expires_at:%Y-%m-%d %H:%M:%S %Z}")


class ModelNotAllowed(HubError):
    status_code = 403
    error_type = "key_model_access_denied"
    param = "model"

    def __init__(self, holder: str, model: str, allowed: list[str]) -> None:
        super().__init__(f"{holder} may not use model '{model}'; allowed: {', '.join(allowed)}")


class RouteNotAllowed(HubError):
    status_code = 403
    error_type = "auth_error"
    param = "route"

    def __init__(self, route: str) -> None:
        super().__init__(f"virtual keys may call the model API only, not {route}; use the master key")


class BudgetExceeded(HubError):
    # 400 with type budget_exceeded is what LiteLLM itself answers for an exhausted key budget.
    status_code = 400
    error_type = "budget_exceeded"
    param = "max_budget"

    def __init__(self, holder: str, spent: float, budget: float) -> None:
        super().__init__(f"budget exceeded for {holder}: spent ${spent:.6f} of ${budget:.6f}")


class NotAServiceKey(HubError):
    status_code = 403
    error_type = "auth_error"

    def __init__(self, alias: str, header: str) -> None:
        super().__init__(f"API key '{alias}' is not a service key: it may not act for a person with {header}")
        self.param = header


class PersonHasNoKey(HubError):
    status_code = 401
    error_type = "account_disabled"

    def __init__(self, user_id: str, header: str) -> None:
        super().__init__(f"account {user_id} is disabled or has no proxy key")
        self.param = header


class InvalidRequest(HubError):
    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class KeyStoreUnavailable(HubError):
    status_code = 503
    error_type = "no_db_connection"
    param = None

    def __init__(self) -> None:
        super().__init__("cannot verify the API key: the hub database is unreachable; try again shortly")


class DatabaseUnavailable(Exception):
    """PostgreSQL did not answer; the message names host/port/database but never credentials."""


class AdminError(Exception):
    """A key-administration request that cannot be done as asked; the CLI prints it on one line."""


class AliasTaken(AdminError):
    def __init__(self, alias: str) -> None:
        super().__init__(f"an active key with alias '{alias}' already exists; revoke it first or pick another alias")


class NoSuchKey(AdminError):
    def __init__(self, selector: str) -> None:
        super().__init__(f"no active key with alias or prefix '{selector}'")


class AmbiguousKey(AdminError):
    def __init__(self, selector: str, count: int) -> None:
        super().__init__(f"'{selector}' matches {count} active keys; use the full prefix shown by `list`")


class PersonHasKey(AdminError):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"account {user_id} already has an active key; revoke it first")


class NoKeyWithHash(AdminError):
    def __init__(self, key_hash: str) -> None:
        super().__init__(f"no active key with hash {key_hash[:12]}...")


class BadDuration(AdminError):
    def __init__(self, text: str) -> None:
        super().__init__(f"cannot read duration '{text}': use a number and a unit, e.g. 45m, 12h, 30d")
