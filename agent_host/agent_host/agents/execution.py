"""One tool call: arguments checked against the schema, a timeout, failures turned into error results."""

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import jsonschema
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

from agent_host.agents.limits import cap_result
from agent_host.agents.tools import ToolFailure

log = logging.getLogger(__name__)
SCHEMA_HINT_CHARS = 400


@dataclass(frozen=True)
class ToolRun:
    content: str
    is_error: bool
    latency_ms: float
    truncated: bool = False


def argument_problem(tool: BaseTool, arguments: dict[str, Any] | str) -> str | None:
    """Why these arguments do not fit the tool's schema, or None when they do."""
    if not isinstance(arguments, dict):
        return f"the arguments are not a JSON object: {str(arguments)[:SCHEMA_HINT_CHARS]!r}"
    schema = tool.args_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        try:
            schema.model_validate(arguments)
        except ValidationError as exc:
            return "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
                for error in exc.errors()[:5]
            )
        return None
    if isinstance(schema, dict):
        validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            errors = sorted(validator_class(schema).iter_errors(arguments), key=lambda error: list(error.path))
        except jsonschema.SchemaError:
            return None  # the tool's own schema is broken: let the tool judge the arguments
        if errors:
            return "; ".join(f"{'.'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors[:5])
    return None


def schema_hint(tool: BaseTool) -> str:
    parameters = tool.tool_call_schema
    if isinstance(parameters, dict):
        schema = parameters
    elif isinstance(parameters, type) and issubclass(parameters, BaseModel):
        schema = parameters.model_json_schema()
    else:
        return "{}"
    return json.dumps(schema.get("properties", {}))[:SCHEMA_HINT_CHARS]


async def run_tool(
    tools: dict[str, BaseTool], name: str, arguments: dict[str, Any] | str, timeout: float, max_chars: int
) -> ToolRun:
    """Never raises: a bad call, a timeout or a failure is an error result the model can read and correct."""
    started = time.perf_counter()

    def result(text: str, is_error: bool) -> ToolRun:
        capped, truncated = cap_result(text, max_chars)
        return ToolRun(capped, is_error, round((time.perf_counter() - started) * 1000, 2), truncated)

    tool = tools.get(name)
    if tool is None:
        return result(f"unknown tool {name!r}; the tools are: {', '.join(tools) or 'none'}", True)
    problem = argument_problem(tool, arguments)
    if problem is not None:
        return result(f"invalid arguments for {name}: {problem}. Expected arguments: {schema_hint(tool)}", True)
    try:
        async with asyncio.timeout(timeout):
            output = await tool.ainvoke(arguments)
    except TimeoutError:
        return result(f"{name} timed out after {timeout:g} s", True)
    except ToolFailure as exc:
        return result(str(exc), True)
    except Exception as exc:  # a tool's bug must not end the run: the model hears about it instead
        log.warning("tool %s failed", name, exc_info=True)
        return result(f"{name} failed: {type(exc).__name__}: {exc}", True)
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    return result(text, False)
