"""The `mcpServers` file (Claude Desktop's format): stdio servers by `command`, streamable HTTP servers by `url`.

    {"mcpServers": {
        "files": {"command": "python",
                  "args": ["-m", "agent_host.mcp.examples.files_server", "--root", ".stack/notes"]},
        "remote": {"url": "http://127.0.0.1:9000/mcp", "headers": {"Authorization": "Bearer ..."}}}}

A stdio `command` of `python`/`python3` runs with the host's own interpreter, so the venv's packages are there.
Stdio servers start in the repository root (unless `cwd` says otherwise): relative paths in `args` are relative to it.
The operator's file (MCP_SERVERS_FILE) is only read. Servers added through the API live in PostgreSQL
(agent_host.mcp.store), each row one entry of this format; a run-time file of the same format from older hosts
(MCP_RUNTIME_SERVERS_FILE) is imported once and never written.
"""

import logging
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent_host.config import SERVICE_DIR
from agent_host.errors import McpConfigInvalid
from agent_host.mcp.redaction import mask_args, mask_url

log = logging.getLogger(__name__)
REPO_ROOT = SERVICE_DIR.parent
# Short enough that `<server>__<tool>` leaves room for the tool in OpenAI's 64-character function names.
SERVER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
Transport = Literal["stdio", "http"]


class McpServerConfig(BaseModel):
    """One entry of `mcpServers`: either `command` (stdio) or `url` (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid")

    # Optional, as other clients write it; the transport follows from `command` or `url` anyway.
    type: Literal["stdio", "http", "streamable-http", "streamableHttp"] | None = None
    command: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = Field(default=None, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def one_transport(self) -> "McpServerConfig":
        if (self.command is None) == (self.url is None):
            raise ValueError('give either "command" (a stdio server) or "url" (a streamable HTTP server)')
        if self.command is not None and (self.headers or self.type not in (None, "stdio")):
            raise ValueError('"headers" and an HTTP "type" need "url", not "command"')
        if self.url is not None and (self.args or self.env or self.cwd or self.type == "stdio"):
            raise ValueError('"args", "env", "cwd" and type "stdio" need "command", not "url"')
        return self

    @property
    def transport(self) -> Transport:
        return "stdio" if self.command is not None else "http"

    def describe(self) -> str:
        """Where the server runs, with secret-looking arguments masked and without env values or headers."""
        if self.url is not None:
            return mask_url(self.url)
        return " ".join([self.command or "", *mask_args(self.args)])

    def to_file(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)


class McpServersFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    mcpServers: dict[str, McpServerConfig] = Field(default_factory=dict)  # the file format's name

    @model_validator(mode="after")
    def names_fit(self) -> "McpServersFile":
        for name in self.mcpServers:
            check_name(name)
        return self


def check_name(name: str) -> None:
    if not re.fullmatch(SERVER_NAME, name):
        raise ValueError(f"server name {name!r}: use 1-32 letters, digits, '_' or '-', not starting with '_' or '-'")


def load_servers(path: Path) -> dict[str, McpServerConfig]:
    """The configured servers; a missing file means none. A bad file raises McpConfigInvalid naming the problem."""
    return _read(path).mcpServers


def _read(path: Path) -> McpServersFile:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return McpServersFile()
    except OSError as exc:
        raise McpConfigInvalid(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return McpServersFile.model_validate_json(text)
    except ValidationError as exc:
        raise McpConfigInvalid(f"{path}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """Pydantic's errors as one readable line: `mcpServers.files.args: Input should be a valid list`."""
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def legacy_servers(path: Path, taken: set[str]) -> dict[str, McpServerConfig] | None:
    """The HTTP servers of an old run-time file, but a name the operator's file uses; None without a usable file."""
    if not path.exists():
        return None
    try:
        saved = load_servers(path)
    except McpConfigInvalid as exc:
        # Left as it is for the operator to fix; the host starts without it.
        log.error("MCP: not importing the servers added at run time: %s", exc.message)
        return None
    servers = {}
    for name, config in saved.items():
        if config.url is None:
            log.warning("MCP: skipping %s in %s: stdio servers belong in the operator's servers file", name, path)
        elif name in taken:
            log.warning("MCP: skipping %s in %s: the operator's servers file configures it", name, path)
        else:
            servers[name] = config
    return servers
