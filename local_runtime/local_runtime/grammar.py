"""GBNF grammars that constrain generation: JSON mode, JSON-schema formats and tool calls."""

import json
from functools import lru_cache
from typing import Any

from local_runtime.errors import InvalidRequest
from local_runtime.prompting import TOOL_CALL_CLOSE, TOOL_CALL_OPEN, ToolSpec
from local_runtime.vendor.json_schema_to_grammar import JSON_GBNF, SchemaConverter

# The converter's own `char` admits raw control characters, which json.loads rejects.
_STRICT_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
# In tool arguments a string may not open with a space or JSON punctuation: small models otherwise pick a
# token such as `"}` or `".` right after `":`, whose tail becomes the argument's garbled first character.
_TOOL_STRING = r'"\"" (string-first char*)? "\"" space'
_TOOL_STRING_FIRST = r'[^"\\\x7F\x00-\x20}\],.:] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'


def _converter() -> SchemaConverter:
    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def _rules(converter: SchemaConverter) -> str:
    if "char" in converter._rules:
        converter._rules["char"] = _STRICT_CHAR
    return str(converter.format_grammar())


@lru_cache(maxsize=64)
def _schema_grammar(schema_json: str) -> str:
    converter = _converter()
    try:
        schema = converter.resolve_refs(json.loads(schema_json), "format")
        converter.visit(schema, "")
    except Exception as exc:  # the converter raises bare exceptions on schemas it cannot express
        raise InvalidRequest(f"invalid JSON schema in format: {exc}") from exc
    return _rules(converter)


def format_grammar(fmt: str | dict[str, Any] | None) -> str | None:
    """Grammar for Ollama's `format`: "json" for any object, a dict for a JSON schema."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return JSON_GBNF
    if isinstance(fmt, dict):
        return _schema_grammar(json.dumps(fmt, sort_keys=True))
    raise InvalidRequest(f'invalid format: {fmt!r} (expected "json" or a JSON schema object)')


def _call_schema(tools: list[ToolSpec]) -> dict[str, Any]:
    """One call: {"name": <a tool>, "arguments": <that tool's parameters>}."""
    options = []
    for tool in tools:
        parameters = tool.parameters or {"type": "object", "properties": {}}
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": tool.name}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    return options[0] if len(options) == 1 else {"anyOf": options}


def tool_grammar(tools: list[ToolSpec]) -> str:
    """`<tool_call>[call, ...]</tool_call>` where every call names a tool and fits its parameters."""
    converter = _converter()
    try:
        schema = converter.resolve_refs(_call_schema(tools), "tools")
        call_rule = converter.visit(schema, "call")
    except Exception as exc:
        raise InvalidRequest(f"invalid tool parameters schema: {exc}") from exc
    if "string" in converter._rules:
        converter._rules["string"] = _TOOL_STRING
        converter._rules["string-first"] = _TOOL_STRING_FIRST
    # One call per turn: small models asked for a list keep appending unrelated calls.
    calls = f'"{TOOL_CALL_OPEN}[" space {call_rule} "]{TOOL_CALL_CLOSE}"'
    return f"root ::= {calls}\n{_rules(converter)}"
