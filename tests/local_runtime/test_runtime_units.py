"""Pure pieces of the runtime that need no model: durations, model names."""

import math

import pytest

from local_runtime.catalog import normalize_name
from local_runtime.durations import DurationError, parse_keep_alive


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("0", 0.0),
        (0, 0.0),
        (30, 30.0),
        ("-1", math.inf),
        (-1, math.inf),
    ],
)
def test_keep_alive_reads_go_durations_and_seconds(value: str | int, seconds: float) -> None:
    assert parse_keep_alive(value, "5m") == seconds


def test_keep_alive_defaults_when_absent() -> None:
    assert parse_keep_alive(None, "5m") == 300.0


def test_keep_alive_rejects_nonsense() -> None:
    with pytest.raises(DurationError):
        parse_keep_alive("soon", "5m")


def test_untagged_names_mean_latest() -> None:
    assert normalize_name("smollm2") == "smollm2:latest"
    assert normalize_name("SmolLM2:135m") == "smollm2:135m"
    assert normalize_name("library/qwen2.5") == "library/qwen2.5:latest"
