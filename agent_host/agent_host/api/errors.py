"""The one place domain errors become HTTP responses: `{"error": {"type", "message"}}`."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from agent_host.api.middleware import BodyLimitExceeded
from agent_host.errors import AgentHostError, Unauthorized

log = logging.getLogger(__name__)


def error_response(status: int, kind: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AgentHostError)
    async def domain_error(request: Request, exc: AgentHostError) -> JSONResponse:
        if not isinstance(exc, Unauthorized):
            log.warning("%s: %s", exc.type, exc.message)
        return error_response(exc.status, exc.type, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()[:5]
        )
        return error_response(422, "invalid_request", problems or "malformed request body")

    @app.exception_handler(BodyLimitExceeded)
    async def too_large(request: Request, exc: BodyLimitExceeded) -> JSONResponse:
        return error_response(413, "request_too_large", str(exc))
