"""Tools offered in the tests, and a small checker for the JSON-schema subset they use."""

from typing import Any

WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "The city, e.g. Paris"},
        "format": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location", "format"],
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather for a location",
        "parameters": WEATHER_PARAMETERS,
    },
}
ADD_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}
ADD_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "add", "description": "Add two integers", "parameters": ADD_PARAMETERS},
}
_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def schema_violations(arguments: Any, schema: dict[str, Any]) -> list[str]:
    """What in `arguments` breaks an object schema of typed, possibly enumerated, properties."""
    if not isinstance(arguments, dict):
        return [f"arguments are not an object: {arguments!r}"]
    problems = [f"missing {key}" for key in schema.get("required", []) if key not in arguments]
    for key, value in arguments.items():
        spec = schema["properties"].get(key)
        if spec is None:
            problems.append(f"unexpected {key}")
            continue
        expected = _TYPES[spec["type"]]
        if not isinstance(value, expected) or (spec["type"] == "integer" and isinstance(value, bool)):
            problems.append(f"{key} is not {spec['type']}: {value!r}")
        if "enum" in spec and value not in spec["enum"]:
            problems.append(f"{key} not in {spec['enum']}: {value!r}")
    return problems
