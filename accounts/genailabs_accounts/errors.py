"""Domain errors of accounts; each service maps them to its own HTTP answer with `status_code`/`error_type`."""


class AccountError(Exception):
    """Base class: `status_code` and `error_type` say how a service answers."""

    status_code = 400
    error_type = "account_error"


class InvalidCredentials(AccountError):
    status_code = 401
    error_type = "invalid_credentials"

    def __init__(self) -> None:
        # One message whether or not the login exists: the answer must not tell which.
        super().__init__("wrong login or password")


class TooManyAttempts(AccountError):
    status_code = 429
    error_type = "too_many_attempts"

    def __init__(self, retry_after: int, locked: bool = False) -> None:
        self.retry_after = retry_after
        what = "too many failed sign-ins: this login is locked" if locked else "too many failed sign-ins"
        super().__init__(f"{what}; try again in {retry_after} s")


class NotSignedIn(AccountError):
    status_code = 401
    error_type = "not_signed_in"


class AccountDisabled(AccountError):
    status_code = 401
    error_type = "account_disabled"

    def __init__(self) -> None:
        super().__init__("this account is disabled: ask an admin")


class AccountNotFound(AccountError):
    status_code = 404
    error_type = "not_found"


class LoginTaken(AccountError):
    status_code = 409
    error_type = "login_taken"

    def __init__(self, login: str) -> None:
        super().__init__(f"the login '{login}' is taken")


class LastAdmin(AccountError):
    status_code = 409
    error_type = "last_admin"

    def __init__(self) -> None:
        super().__init__("this is the last active admin: make another admin first")


class BadAccountInput(AccountError):
    status_code = 422
    error_type = "invalid_input"


class AccountsUnavailable(AccountError):
    status_code = 503
    error_type = "accounts_unavailable"
