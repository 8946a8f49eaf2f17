"""The FastAPI application: lifespan-built runtime, error mapping, one log line per request."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local_runtime.api import embeddings, manage, models, ollama, openai
from local_runtime.api.guards import (
    DEFAULT_ORIGINS,
    BodyLimit,
    OriginGuard,
    error_response,
    is_loopback,
    origin_pattern,
)
from local_runtime.api.openapi import install_openapi
from local_runtime.catalog import Catalog, shipped_models
from local_runtime.config import RuntimeSettings, get_settings
from local_runtime.details import MetadataCache
from local_runtime.errors import QueueFull, RuntimeServiceError
from local_runtime.pool import ModelPool
from local_runtime.runtime import Runtime
from local_runtime.version import __version__

log = logging.getLogger("local_runtime")


class RequestLog:
    """Pure ASGI (not BaseHTTPMiddleware) so streaming and client disconnects pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            model = scope.get("state", {}).get("model", "-")
            elapsed = (time.perf_counter() - started) * 1000
            log.info("%s %s model=%s status=%d %.0fms", scope["method"], scope["path"], model, status, elapsed)


def error_body(request: Request, status: int, message: str) -> JSONResponse:
    """Ollama's {"error": "..."} on /api, OpenAI's {"error": {...}} on /v1."""
    return error_response(request.url.path, status, message)


def validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    kind, location = first.get("type", ""), [str(part) for part in first.get("loc", ()) if part != "body"]
    if kind == "json_invalid":
        return f"invalid JSON in request body: {first.get('ctx', {}).get('error', first.get('msg'))}"
    field = ".".join(location)
    if kind in ("missing", "string_too_short") and field == "model":
        return "model is required"
    if not location:
        return "request body must be a JSON object"
    return f"invalid value for {field}: {first.get('msg', 'invalid')}"


def create_app(settings: RuntimeSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = Catalog(settings.models_dir, shipped_models(settings.default_model), settings.registry)
        metadata = MetadataCache()
        pool = ModelPool(
            catalog,
            metadata,
            settings.llama_server,
            threads=settings.threads,
            parallel=settings.num_parallel,
            tool_call_bias=settings.tool_call_bias,
            max_queue=settings.max_queue,
            load_timeout=settings.load_timeout,
        )
        await pool.start()
        app.state.runtime = Runtime(settings, catalog, metadata, pool)
        # Reading a GGUF's vocabulary takes seconds: done now for the models there are, not in a first request.
        warm = asyncio.create_task(asyncio.to_thread(lambda: [metadata.read(m.path) for m in catalog.scan().values()]))
        yield
        warm.cancel()
        await pool.stop()

    app = FastAPI(title="local_runtime", version=__version__, lifespan=lifespan)
    app.include_router(ollama.router)
    app.include_router(openai.router)
    app.include_router(models.router)
    app.include_router(manage.router)
    app.include_router(embeddings.router)
    install_openapi(app)

    # The ollama CLI sends HEAD / before every command; both answer as Ollama does.
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def root() -> PlainTextResponse:
        return PlainTextResponse("Ollama is running")  # what clients probe for, verbatim

    @app.exception_handler(RuntimeServiceError)
    async def service_error(request: Request, exc: RuntimeServiceError) -> JSONResponse:
        response = error_body(request, exc.status_code, str(exc))
        if isinstance(exc, QueueFull):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_body(request, 400, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_body(request, 500, "internal server error")

    # The last added runs first: log, then refuse foreign origins, answer CORS, and count the body.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    origins = DEFAULT_ORIGINS + settings.origins
    app.add_middleware(
        CORSMiddleware, allow_origin_regex=origin_pattern(origins).pattern, allow_methods=["*"], allow_headers=["*"]
    )
    app.add_middleware(OriginGuard, origins=settings.origins, check_host=is_loopback(settings.host))
    app.add_middleware(RequestLog)
    return app
