"""The one place domain errors become HTTP responses: `{"error": {"type", "message"}}`."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent_host.api.middleware import BodyLimitExceeded
from agent_host.errors import AgentHostError, Unauthorized
from agent_host.schemas import ErrorBody
from genailabs_accounts.errors import AccountError, TooManyAttempts

log = logging.getLogger(__name__)
# What each error status means on the host's routes, for their OpenAPI `responses`.
ERROR_MEANINGS = {
    400: "the request cannot be served as it is (too long for the model's window, refused by the proxy)",
    401: "no valid credential: a sign-in token or an API key in Authorization: Bearer (?api_key= only on /ws/chat),"
    " unknown, expired, revoked, or of a disabled account",
    403: "an admin's action, and the caller is not an admin",
    404: "no such session, model, collection, document, job or account",
    409: "already exists",
    413: "the body is over its size limit",
    415: "unsupported document type",
    422: "malformed request",
    429: "too many failed sign-ins for this login: wait Retry-After seconds",
    502: "the proxy failed on the request",
    503: "the proxy, the database, the accounts database or the vector store is unavailable",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, all with the `{"error": {"type", "message"}}` body."""
    return {status: {"model": ErrorBody, "description": ERROR_MEANINGS[status]} for status in statuses}


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AgentHostError)
    async def domain_error(request: Request, exc: AgentHostError) -> JSONResponse:
        if not isinstance(exc, Unauthorized):
            log.warning("%s: %s", exc.type, exc.message)
        return error_response(exc.status, exc.type, exc.message)

    @app.exception_handler(AccountError)
    async def account_error(request: Request, exc: AccountError) -> JSONResponse:
        """genailabs_accounts' errors carry their own status and type; a throttled sign-in says when to retry."""
        if exc.status_code >= 500:
            log.warning("%s: %s", exc.error_type, exc)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
        return error_response(exc.status_code, exc.error_type, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()[:5]
        )
        return error_response(422, "invalid_request", problems or "malformed request body")

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own answers (no such route, wrong method, an unreadable body) in the host's error body."""
        if exc.status_code == 400:  # FastAPI's "error parsing the body": malformed, like every other bad body
            return error_response(422, "invalid_request", "the request body cannot be read (not UTF-8 JSON?)")
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail))

    @app.exception_handler(BodyLimitExceeded)
    async def too_large(request: Request, exc: BodyLimitExceeded) -> JSONResponse:
        return error_response(413, "request_too_large", str(exc))
