"""An example MCP server: notes and files confined to one directory, over stdio.

    python -m agent_host.mcp.examples.files_server --root .stack/notes

Every path is relative to the root: `..`, absolute paths and symlinks that lead out of it are refused with a
tool error, reads and writes are size-capped, notes are `.md`/`.txt` files, and nothing runs a shell.
"""

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

NOTE_SUFFIXES = (".md", ".txt")


@dataclass(frozen=True)
class Sandbox:
    """The one directory the tools may touch, and how much they may read or write."""

    root: Path
    max_read_chars: int = 100_000
    max_write_chars: int = 100_000
    max_entries: int = 500

    def resolve(self, relative: str) -> Path:
        """The real path inside the root; anything that would leave it is a ToolError."""
        candidate = Path(relative)
        if candidate.is_absolute() or relative.startswith("~"):
            raise ToolError(f"{relative!r}: absolute paths are refused; give a path relative to the notes folder")
        if ".." in candidate.parts:
            raise ToolError(f"{relative!r}: '..' is refused; paths stay inside the notes folder")
        # resolve() follows symlinks, so a link pointing outside lands outside and is caught here.
        real = (self.root / candidate).resolve()
        if not real.is_relative_to(self.root):
            raise ToolError(f"{relative!r}: leads outside the notes folder (through a symlink)")
        return real

    def display(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() or "."


def build_server(sandbox: Sandbox) -> MCPServer:
    """The server's tools, closed over the sandbox."""
    mcp = MCPServer(
        "files", instructions="Notes and files in one folder; paths are relative to it.", log_level="WARNING"
    )

    @mcp.tool()
    def list_files(path: str = ".") -> list[str]:
        """List the files under a folder of the notes directory.

        Args:
            path: folder relative to the notes directory; "." is its top.
        """
        folder = sandbox.resolve(path)
        if not folder.is_dir():
            raise ToolError(f"{path!r} is not a folder")
        found: list[str] = []
        for entry in sorted(folder.rglob("*")):
            real = entry.resolve()
            if entry.is_file() and real.is_relative_to(sandbox.root):
                found.append(sandbox.display(entry))
                if len(found) >= sandbox.max_entries:
                    found.append(f"[stopped after {sandbox.max_entries} files]")
                    break
        return found

    @mcp.tool()
    def read_file(path: str) -> str:
        """Read a text file from the notes directory.

        Args:
            path: file relative to the notes directory.
        """
        real = sandbox.resolve(path)
        if not real.is_file():
            raise ToolError(f"{path!r} is not a file")
        with real.open("rb") as handle:
            data = handle.read(sandbox.max_read_chars * 4 + 1)
        if b"\0" in data:
            raise ToolError(f"{path!r} is a binary file")
        text = data.decode("utf-8", errors="replace")
        if len(text) > sandbox.max_read_chars:
            return text[: sandbox.max_read_chars] + f"\n[truncated at {sandbox.max_read_chars} characters]"
        return text

    @mcp.tool()
    def write_note(path: str, content: str, append: bool = False) -> str:
        """Write (or append to) a .md or .txt note in the notes directory.

        Args:
            path: note file relative to the notes directory, e.g. "ideas/today.md".
            content: the text to write.
            append: add to the end of the note instead of replacing it.
        """
        if not path.endswith(NOTE_SUFFIXES):
            raise ToolError(f"{path!r}: notes are .md or .txt files")
        if len(content) > sandbox.max_write_chars:
            raise ToolError(f"content is {len(content)} characters; the limit is {sandbox.max_write_chars}")
        real = sandbox.resolve(path)
        real.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        # O_NOFOLLOW: a symlink swapped in after the check above is refused, not written through.
        try:
            fd = os.open(real, flags | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise ToolError(f"{path!r}: cannot write: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return f"wrote {len(content)} characters to {sandbox.display(real)}"

    @mcp.tool()
    def search_files(query: str, max_matches: int = 20) -> list[str]:
        """Find lines containing a phrase (case-insensitive) in the notes directory's text files.

        Args:
            query: the phrase to look for.
            max_matches: stop after this many matching lines (at most 100).
        """
        if not query.strip():
            raise ToolError("query is empty")
        needle, limit, matches = query.lower(), max(1, min(max_matches, 100)), []
        for entry in sorted(sandbox.root.rglob("*")):
            real = entry.resolve()
            if not (entry.is_file() and real.is_relative_to(sandbox.root)):
                continue
            with real.open("rb") as handle:
                data = handle.read(sandbox.max_read_chars)
            if b"\0" in data:
                continue
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
                if needle in line.lower():
                    matches.append(f"{sandbox.display(entry)}:{number}: {line.strip()[:200]}")
                    if len(matches) >= limit:
                        return matches
        return matches

    return mcp


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="files_server", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the folder the tools are confined to")
    args = parser.parse_args(argv)
    root = args.root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    build_server(Sandbox(root)).run("stdio")


if __name__ == "__main__":
    main()
