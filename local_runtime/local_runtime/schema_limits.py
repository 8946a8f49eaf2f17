"""Bounds on client JSON schemas, checked before a grammar is built from them.

llama.cpp expands every length or item bound and every `{m,n}` repetition of a `pattern` into that
many grammar rules: a string of `maxLength: 100000` crashed it while parsing the grammar.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from local_runtime.errors import InvalidRequest

_BOUND_KEYWORDS = frozenset(
    {"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains"}
)
# Values that are data rather than schemas: a "maxLength" key inside an enum value bounds nothing.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})
_REPETITION = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")


@dataclass(frozen=True)
class SchemaLimits:
    max_bound: int
    max_bound_total: int
    max_depth: int
    max_bytes: int


def _path(where: str, parts: tuple[str | int, ...]) -> str:
    """`where` and the keys below it, as in `format.properties.text.maxLength`."""
    text = where
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _children(node: Any) -> Iterator[tuple[str | int, Any]]:
    if isinstance(node, dict):
        yield from node.items()
    elif isinstance(node, list):
        yield from enumerate(node)


def _bounds(key: str | int, value: Any) -> list[int]:
    """The rule counts one keyword asks llama.cpp for."""
    if key in _BOUND_KEYWORDS and isinstance(value, int | float) and not isinstance(value, bool):
        return [int(value)] if abs(value) < 1e18 else [10**18]
    if key == "pattern" and isinstance(value, str):
        return [int(number) for match in _REPETITION.finditer(value) for number in match.groups() if number]
    return []


def check_schema(schema: Any, where: str, limits: SchemaLimits) -> None:
    """Raise InvalidRequest naming the field when `schema` is too deep, too large or too heavily bounded."""
    total = 0
    # Iterative, depth-first: a deeply nested schema must not exhaust Python's stack here either.
    stack: list[tuple[Any, tuple[str | int, ...], bool]] = [(schema, (), False)]
    while stack:
        node, parts, is_data = stack.pop()
        if len(parts) > limits.max_depth:
            raise InvalidRequest(
                f"JSON schema in {where} is nested deeper than {limits.max_depth} levels (at {_path(where, parts)})"
            )
        for key, value in _children(node):
            child_parts = (*parts, key)
            if not is_data:
                for bound in _bounds(key, value):
                    if bound > limits.max_bound:
                        amount = f"a repetition of {bound}" if key == "pattern" else str(bound)
                        raise InvalidRequest(
                            f"JSON schema too large: {_path(where, child_parts)} is {amount}, over the limit of "
                            f"{limits.max_bound}"
                        )
                    total += bound
            if isinstance(value, dict | list):
                stack.append((value, child_parts, is_data or key in _DATA_KEYWORDS))
    if total > limits.max_bound_total:
        raise InvalidRequest(
            f"JSON schema in {where}: its length, item and repetition bounds add up to {total}, over the limit of "
            f"{limits.max_bound_total}"
        )
    size = len(json.dumps(schema))
    if size > limits.max_bytes:
        raise InvalidRequest(f"JSON schema in {where} is {size} bytes, over the limit of {limits.max_bytes}")
