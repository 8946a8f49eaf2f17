"""Request-scoped access to what the lifespan built."""

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from local_runtime.errors import InvalidRequest
from local_runtime.runtime import Runtime

Body = TypeVar("Body", bound=BaseModel)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def json_body(model: type[Body]) -> Callable[[Request], Awaitable[Body]]:
    """Parse the body as JSON whatever the Content-Type: Ollama's clients (and curl -d) often omit it."""

    async def parse(request: Request) -> Body:
        raw = await request.body()
        if not raw.strip():
            raise InvalidRequest("missing request body")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"invalid JSON in request body: {exc}") from exc
        except RecursionError as exc:
            raise InvalidRequest("invalid JSON in request body: nested too deeply") from exc
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from exc

    return parse
