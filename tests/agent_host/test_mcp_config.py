"""The mcpServers file, tool naming, argument checks and result capping, without any server running."""

import json
import re
from pathlib import Path

import pytest

from agent_host.errors import McpConfigInvalid
from agent_host.mcp.config import load_servers
from agent_host.mcp.tools import ArgumentChecker, cap, qualify


def write(path: Path, data: object) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_missing_servers_file_means_no_servers(tmp_path: Path) -> None:
    assert load_servers(tmp_path / "absent.json") == {}


def test_claude_desktop_entries_load_as_stdio_and_http(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mcp.json",
        {
            "mcpServers": {
                "files": {"command": "python", "args": ["-m", "x"], "env": {"A": "1"}},
                "remote": {"type": "http", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer s"}},
            }
        },
    )
    servers = load_servers(path)
    assert {name: config.transport for name, config in servers.items()} == {"files": "stdio", "remote": "http"}
    assert servers["files"].args == ["-m", "x"]
    assert "Bearer" not in servers["remote"].describe()


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("{not json", "mcp.json"),
        ({"mcpServers": {"x": {"command": "python", "args": "-m x"}}}, "mcpServers.x.args"),
        ({"mcpServers": {"x": {"command": "python", "url": "http://h/mcp"}}}, "either"),
        ({"mcpServers": {"x": {}}}, "either"),
        ({"mcpServers": {"x": {"url": "ftp://h/mcp"}}}, "mcpServers.x.url"),
        ({"mcpServers": {"x": {"comand": "python"}}}, "mcpServers.x.comand"),
        ({"mcpServers": {"bad name": {"command": "python"}}}, "bad name"),
    ],
)
def test_bad_servers_file_raises_one_readable_error(tmp_path: Path, content: object, named: str) -> None:
    path = write(tmp_path / "mcp.json", content)
    with pytest.raises(McpConfigInvalid) as caught:
        load_servers(path)
    message = caught.value.message
    assert str(path) in message and named in message
    assert "\n" not in message


def test_qualified_names_fit_openai_function_names_and_stay_unique() -> None:
    taken: set[str] = set()
    names = []
    for tool in ["read file", "read.file", "x" * 100, "x" * 100 + "y"]:
        names.append(qualify("files", tool, taken))
        taken.add(names[-1])
    assert names[0] == "files__read_file"
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) for name in names)


def test_argument_checker_names_each_problem() -> None:
    checker = ArgumentChecker(
        {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
    )
    assert checker.problems({"a": 1, "b": 2}) is None
    problems = checker.problems({"a": "one"})
    assert problems is not None and "'b' is a required property" in problems and "a: 'one'" in problems


def test_capped_text_stays_within_the_limit_and_says_so() -> None:
    text, truncated = cap("0123456789" * 100, 200)
    assert truncated and len(text) <= 200
    assert text.endswith("of 1000 characters]")
    assert cap("short", 200) == ("short", False)
