"""The limits without a model: schema bounds, grammar timeout, origins and hosts, keep_alive extremes, port probe."""

import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_runtime.__main__ import port_problem
from local_runtime.api.guards import DEFAULT_ORIGINS, local_host_header, origin_pattern
from local_runtime.catalog import Catalog
from local_runtime.config import RuntimeSettings
from local_runtime.details import MetadataCache
from local_runtime.durations import parse_keep_alive
from local_runtime.errors import InvalidRequest
from local_runtime.grammar import format_grammar
from local_runtime.pool import ModelPool
from local_runtime.runtime import Runtime
from local_runtime.schema_limits import SchemaLimits, check_schema

LIMITS = SchemaLimits(max_bound=1000, max_bound_total=10000, max_depth=32, max_bytes=64 * 1024)
BOMB: dict[str, Any] = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 100000}}}


def refusal(schema: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        check_schema(schema, "format", LIMITS)
    return str(caught.value)


def test_string_length_over_the_bound_is_refused_naming_the_field() -> None:
    message = refusal(BOMB)
    assert message == "JSON schema too large: format.properties.text.maxLength is 100000, over the limit of 1000"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "string"}, "minItems": 5000},
        {"type": "object", "maxProperties": 2000},
        {"type": "string", "pattern": "^a{1,50000}$"},
        {"type": "string", "pattern": "^[0-9]{20000}$"},
        {"$defs": {"big": {"type": "string", "minLength": 4000}}, "$ref": "#/$defs/big"},
        {"anyOf": [{"type": "string"}, {"type": "array", "maxItems": 99999}]},
    ],
)
def test_bounds_anywhere_in_the_schema_are_checked(schema: dict[str, Any]) -> None:
    assert "over the limit of 1000" in refusal(schema)


def test_many_bounds_under_the_limit_each_still_count_together() -> None:
    properties = {f"p{index}": {"type": "string", "maxLength": 900} for index in range(20)}
    assert "add up to 18000" in refusal({"type": "object", "properties": properties})


def test_deep_nesting_is_refused() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        schema = {"type": "array", "items": schema}
    assert "nested deeper than 32" in refusal(schema)


def test_a_schema_over_the_byte_limit_is_refused() -> None:
    schema = {"type": "string", "enum": ["x" * 100 for _ in range(1000)]}
    assert "bytes, over the limit of 65536" in refusal(schema)


def test_bounds_inside_data_keywords_and_ordinary_schemas_pass() -> None:
    check_schema({"type": "object", "properties": {"k": {"enum": [{"maxLength": 99999}]}}}, "format", LIMITS)
    check_schema(
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 64, "pattern": "^[a-z]{1,20}$"},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
            },
            "required": ["name"],
        },
        "format",
        LIMITS,
    )


def test_a_schema_at_the_bound_converts_to_a_grammar() -> None:
    grammar = format_grammar({"type": "object", "properties": {"text": {"type": "string", "maxLength": 1000}}})
    assert grammar is not None and grammar.count("(char") == 1000


@pytest.mark.parametrize(
    "origin",
    ["http://localhost", "http://localhost:8501", "https://127.0.0.1:3000", "http://[::1]:80", "app://obsidian.md",
     "file://", "tauri://localhost", "vscode-webview://abc"],
)  # fmt: skip
def test_local_and_app_origins_are_allowed(origin: str) -> None:
    assert origin_pattern(DEFAULT_ORIGINS).fullmatch(origin)


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://localhost.evil.example", "null", "http://127.0.0.2", "https://github.com"],
)
def test_foreign_origins_are_not(origin: str) -> None:
    assert not origin_pattern(DEFAULT_ORIGINS).fullmatch(origin)


def test_configured_origins_add_wildcards() -> None:
    allowed = origin_pattern([*DEFAULT_ORIGINS, "https://*.example.com", "chrome-extension://*"])
    assert allowed.fullmatch("https://app.example.com") and allowed.fullmatch("chrome-extension://abcdef")
    assert not allowed.fullmatch("https://example.org")
    assert origin_pattern(["*"]).fullmatch("https://anything.example")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("localhost:11434", True), ("127.0.0.1:11434", True), ("[::1]:11434", True), ("10.0.0.5", True),
     ("box.local", True), ("app.localhost:8080", True), ("", True), ("evil.example:11434", False),
     ("attacker.com", False), ("8.8.8.8", False), ("DevBox:11434", True)],
)  # fmt: skip
def test_host_header_must_name_this_machine(host: str, allowed: bool) -> None:
    assert local_host_header(host, "devbox") is allowed


@pytest.mark.parametrize(("value", "seconds"), [(10**400, math.inf), (-(10**400), math.inf), ("1e400", math.inf)])
def test_keep_alive_past_any_duration_means_forever(value: int | str, seconds: float) -> None:
    assert parse_keep_alive(value, "5m") == seconds


@pytest.fixture
def time_wait_port() -> Iterator[int]:
    """A port whose only socket is a closed connection in TIME_WAIT (the server side closed first)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the side that closes first goes to TIME_WAIT, on the listening port
        client.recv(1)
        client.close()
    yield port


def test_a_port_in_time_wait_is_not_reported_busy(time_wait_port: int) -> None:
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", time_wait_port))  # the old probe (no SO_REUSEADDR) called this port busy
    assert port_problem("127.0.0.1", time_wait_port) is None


def test_a_listening_port_is_reported_busy() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_problem("127.0.0.1", port) == f"port {port} is already in use"


async def test_a_grammar_slower_than_the_timeout_is_refused(tmp_path: Path) -> None:
    settings = RuntimeSettings(models_dir=tmp_path, grammar_timeout=0.0001)
    catalog = Catalog(tmp_path, {settings.default_model: None})
    metadata = MetadataCache()
    pool = ModelPool(catalog, metadata, settings.llama_server, 1, 1, 0.0, settings.max_queue, settings.load_timeout)
    runtime = Runtime(settings, catalog, metadata, pool)
    items = {"type": "object", "properties": {f"slow{index}": {"type": "string"} for index in range(400)}}
    schema = {"type": "array", "items": items, "maxItems": 999}  # some milliseconds to convert
    with pytest.raises(InvalidRequest, match=r"took over 0\.0001s to build"):
        await runtime.grammars(schema, [])
