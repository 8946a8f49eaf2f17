"""The example files server, run over stdio by the host's MCP manager: nothing leaves its folder."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from mcp_support import files_server_entry, mcp_settings, write_servers_file

from agent_host.mcp.manager import McpManager, open_mcp

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(root, outside): a notes folder with links pointing out of it, and a secret beside it."""
    base = tmp_path_factory.mktemp("sandbox")
    root, outside = base / "notes", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP-SECRET")
    (root / "todo.md").write_text("- buy milk\n- water the plants\n")
    (root / "big.txt").write_text("x" * 150_000)
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "door").symlink_to(outside, target_is_directory=True)
    return root, outside


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def manager(sandbox: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[McpManager]:
    root, _ = sandbox
    path = write_servers_file(tmp_path_factory.mktemp("cfg") / "mcp.json", {"notes": files_server_entry(root)})
    async with open_mcp(mcp_settings(path, tool_result_max_chars=4000)) as manager:
        await manager.wait_ready(30)
        assert manager.server("notes").status == "up", manager.server("notes").error
        yield manager


async def test_reads_and_writes_inside_the_folder(manager: McpManager, sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    written = await manager.call("notes__write_note", {"path": "ideas/new.md", "content": "a fresh idea"})
    assert not written.is_error, written.text
    assert (root / "ideas" / "new.md").read_text() == "a fresh idea"
    read = await manager.call("notes__read_file", {"path": "todo.md"})
    assert not read.is_error and "water the plants" in read.text
    found = await manager.call("notes__search_files", {"query": "FRESH"})
    assert "ideas/new.md:1: a fresh idea" in found.text


ESCAPES = ["../outside/secret.txt", "ideas/../../outside/secret.txt", "leak.txt", "door/secret.txt"]


@pytest.mark.parametrize("path", ESCAPES)
async def test_reading_outside_the_folder_is_refused(manager: McpManager, path: str) -> None:
    outcome = await manager.call("notes__read_file", {"path": path})
    assert outcome.is_error
    assert "TOP-SECRET" not in outcome.text


async def test_absolute_paths_are_refused(manager: McpManager, sandbox: tuple[Path, Path]) -> None:
    _, outside = sandbox
    outcome = await manager.call("notes__read_file", {"path": str(outside / "secret.txt")})
    assert outcome.is_error and "absolute" in outcome.text
    listing = await manager.call("notes__list_files", {"path": str(outside)})
    assert listing.is_error and "secret" not in listing.text


@pytest.mark.parametrize("path", ["../escape.md", "door/planted.md", "/tmp/planted.md"])
async def test_writing_outside_the_folder_is_refused(
    manager: McpManager, sandbox: tuple[Path, Path], path: str
) -> None:
    _, outside = sandbox
    outcome = await manager.call("notes__write_note", {"path": path, "content": "planted"})
    assert outcome.is_error
    assert not (outside / "planted.md").exists() and not (outside.parent / "escape.md").exists()


async def test_writing_through_a_planted_link_is_refused(manager: McpManager, sandbox: tuple[Path, Path]) -> None:
    root, outside = sandbox
    (root / "trap.md").symlink_to(outside / "trap-target.md")
    outcome = await manager.call("notes__write_note", {"path": "trap.md", "content": "planted"})
    assert outcome.is_error
    assert not (outside / "trap-target.md").exists()


async def test_listing_and_search_skip_links_that_leave_the_folder(manager: McpManager) -> None:
    listing = await manager.call("notes__list_files", {})
    assert not listing.is_error
    assert "todo.md" in listing.text and "leak.txt" not in listing.text and "secret" not in listing.text
    search = await manager.call("notes__search_files", {"query": "TOP-SECRET"})
    assert "TOP-SECRET" not in search.text


async def test_only_notes_can_be_written_and_only_so_much(manager: McpManager, sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    script = await manager.call("notes__write_note", {"path": "run.sh", "content": "rm -rf /"})
    assert script.is_error and not (root / "run.sh").exists()
    huge = await manager.call("notes__write_note", {"path": "huge.md", "content": "y" * 100_001})
    assert huge.is_error and not (root / "huge.md").exists()


async def test_a_big_file_is_cut_before_it_reaches_the_model(manager: McpManager) -> None:
    outcome = await manager.call("notes__read_file", {"path": "big.txt"})
    assert not outcome.is_error
    assert outcome.truncated and len(outcome.text) <= 4000
    assert "truncated" in outcome.text


async def test_arguments_are_checked_before_the_call(manager: McpManager, sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    before = set(os.listdir(root))
    outcome = await manager.call("notes__write_note", {"path": "typed.md", "content": 42})
    assert outcome.is_error and "invalid arguments" in outcome.text and "content" in outcome.text
    assert set(os.listdir(root)) == before
