"""The shape a model-route request must have before LiteLLM sees it, free of HTTP and I/O.

LiteLLM passes much of a malformed body on (a list body was a 500; a message that is not an object came back
as a 400 carrying its traceback): the hub answers those itself with a 400 naming the field.
"""

from typing import Any

from hub.errors import InvalidRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# Field: (smallest, largest) for numbers a client sets; bools are not numbers here.
RANGES: dict[str, tuple[float, float]] = {
    "max_tokens": (1, 10_000_000),
    "max_completion_tokens": (1, 10_000_000),
    "n": (1, 128),
    "temperature": (0, 2),
    "top_p": (0, 1),
    "presence_penalty": (-2, 2),
    "frequency_penalty": (-2, 2),
}
INTEGERS = frozenset({"max_tokens", "max_completion_tokens", "n"})


def check_request(route: str, body: object) -> None:
    """Raises InvalidRequest for the first field a model request gets wrong; other routes pass."""
    if not isinstance(body, dict):
        raise InvalidRequest("body", "the request body must be a JSON object")
    path = route.rstrip("/").removeprefix("/v1")
    if path == "/chat/completions":
        _check_messages(body.get("messages"))
    elif path == "/completions" and not isinstance(body.get("prompt"), str | list):
        raise InvalidRequest("prompt", "prompt is required: a string or a list of strings")
    elif path == "/embeddings" and not isinstance(body.get("input"), str | list):
        raise InvalidRequest("input", "input is required: a string or a list of strings")
    if path in ("/chat/completions", "/completions", "/embeddings"):
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("model", "model is required: the name of a model from /v1/models")
        _check_numbers(body)


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages", "messages must be a non-empty list of message objects")
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{number}]", f"messages[{number}] must be an object with role and content")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(
                f"messages[{number}].role", f"messages[{number}].role must be one of {', '.join(sorted(ROLES))}"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(f"messages[{number}].content", f"messages[{number}].content must be text or parts")


def _check_numbers(body: dict[str, Any]) -> None:
    for field, (smallest, largest) in RANGES.items():
        value = body.get(field)
        if value is None:
            continue
        kind = int if field in INTEGERS else int | float
        if isinstance(value, bool) or not isinstance(value, kind) or not smallest <= value <= largest:
            what = "a whole number" if field in INTEGERS else "a number"
            raise InvalidRequest(field, f"{field} must be {what} from {smallest:g} to {largest:g}")
