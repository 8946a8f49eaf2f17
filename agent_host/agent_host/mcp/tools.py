"""What the agents see of MCP tools: namespaced descriptions, argument checks, capped text results, call stats."""

import hashlib
import inspect
import json
import re
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from mcp.types import CallToolResult, EmbeddedResource, ImageContent, ResourceLink, TextContent, TextResourceContents

# OpenAI function names: [a-zA-Z0-9_-]{1,64}.
MAX_NAME = 64
LATENCY_SAMPLES = 500
# Error text from a server (its tool errors, its JSON-RPC errors) is cut to this in listings and logs.
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class McpTool:
    server: str
    name: str
    qualified_name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolOutcome:
    text: str
    is_error: bool
    latency_ms: float
    truncated: bool = False


def qualify(server: str, tool: str, taken: set[str]) -> str:
    """`<server>__<tool>` in OpenAI's alphabet; a hash keeps names unique when sanitising or cutting merges them."""
    name = f"{server}__{re.sub(r'[^a-zA-Z0-9_-]', '_', tool)}"
    if len(name) > MAX_NAME or name in taken:
        digest = hashlib.sha1(tool.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}_{digest}"
    return name


def describe(description: str | None) -> str:
    # Docstring-built descriptions arrive indented; the indentation is noise in the model's context.
    return inspect.cleandoc(description or "")


class ArgumentChecker:
    """Validates arguments against a tool's inputSchema before the call goes out."""

    def __init__(self, schema: dict[str, Any]) -> None:
        validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError:
            self.validator: jsonschema.protocols.Validator | None = None  # the server's problem: let it judge
        else:
            self.validator = validator_class(schema)

    def problems(self, arguments: dict[str, Any]) -> str | None:
        if self.validator is None:
            return None
        errors = sorted(self.validator.iter_errors(arguments), key=lambda error: list(error.absolute_path))
        if not errors:
            return None
        lines = []
        for error in errors[:3]:
            where = "/".join(str(part) for part in error.absolute_path)
            lines.append(f"{where}: {error.message}" if where else error.message)
        return "; ".join(lines)


def result_text(result: CallToolResult) -> str:
    """The result's content as one text for the model; non-text blocks are named rather than dropped."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, EmbeddedResource):
            resource = block.resource
            parts.append(resource.text if isinstance(resource, TextResourceContents) else f"[binary {resource.uri}]")
        elif isinstance(block, ResourceLink):
            parts.append(f"[resource {block.uri}]")
        elif isinstance(block, ImageContent):
            parts.append(f"[image {block.mime_type}]")
        else:
            parts.append(f"[{block.type}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def cap(text: str, limit: int) -> tuple[str, bool]:
    """At most `limit` characters, the cut said at the end so the model knows it saw only part."""
    if len(text) <= limit:
        return text, False
    note = f"\n[truncated: showing {{}} of {len(text)} characters]"
    keep = max(0, limit - len(note.format(limit)))
    return text[:keep] + note.format(keep), True


@dataclass
class ToolStats:
    calls: int = 0
    errors: int = 0
    last_error: str | None = None
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def record(self, outcome: ToolOutcome) -> None:
        self.calls += 1
        self.latencies.append(outcome.latency_ms)
        if outcome.is_error:
            self.errors += 1
            self.last_error = shorten(outcome.text)

    def latency(self) -> dict[str, float] | None:
        """Mean, p50, p95 and last call latency in ms over the recent calls."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)

        def percentile(share: float) -> float:
            return round(ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))], 2)

        return {
            "mean": round(statistics.fmean(ordered), 2),
            "p50": percentile(0.5),
            "p95": percentile(0.95),
            "last": round(self.latencies[-1], 2),
        }


def shorten(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """A remote server's error text is its own to choose: it is cut before it is shown or logged."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
