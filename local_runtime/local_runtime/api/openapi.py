"""What /openapi.json says beyond FastAPI's defaults: the bodies json_body parses, and the error answers."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, TypeAdapter

COMPONENTS = "#/components/schemas/{model}"
ERROR_STATUSES = {
    400: "invalid request: bad JSON, a bad value, or a JSON schema over the runtime's limits",
    403: "the request's Origin (or Host) is not allowed",
    404: "model not found",
    413: "request body too large",
    503: "too many requests queued for the model; see Retry-After",
}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose body json_body parses (FastAPI sees no body parameter)."""
    schema = TypeAdapter(model).json_schema(ref_template=COMPONENTS)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def error_responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model, "description": text} for status, text in ERROR_STATUSES.items()}


def install_openapi(app: FastAPI) -> None:
    """Moves the request bodies' nested models (`$defs`) into components, where their refs point."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for path in schema["paths"].values():
                for operation in path.values():
                    content = operation.get("requestBody", {}).get("content", {})
                    for media in content.values():
                        components.update(media["schema"].pop("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
