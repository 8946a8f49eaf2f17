"""Ollama's keep_alive values: Go duration strings ("5m", "1h30m") or plain seconds."""

import math
import re

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_SECONDS = 1e13
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


class DurationError(ValueError):
    """A keep_alive value that is neither a number nor a Go duration."""


def parse_keep_alive(value: str | float | int | None, default: str) -> float:
    """Seconds a model stays loaded after a request; math.inf for a negative value (forever)."""
    if value is None or value == "":
        value = default
    if isinstance(value, bool):
        raise DurationError(f"invalid keep_alive: {value!r}")
    if isinstance(value, int | float):  # an int may be past a float's range
        seconds = float(value) if not abs(value) > MAX_SECONDS else math.inf if value > 0 else -math.inf
    else:
        seconds = _parse_text(value.strip())
    if math.isnan(seconds):
        raise DurationError(f"invalid keep_alive: {value!r}")
    # Past a timedelta's range (about 2.7 million years) a model may as well stay loaded forever.
    return math.inf if seconds < 0 or seconds > MAX_SECONDS else seconds


def _parse_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    total, position = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise DurationError(f"invalid keep_alive duration: {text!r}")
    return sign * total
