"""Starts the agent host as a real process against the test proxy and Postgres."""

import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from devstack.probe import free_port, http_ok
from procs import MASTER_KEY, PYTHON, ManagedProcess

# Test proxies must never spool into the repo's .stack/, where a real stack would pick the rows up.

HOST_KEY = "sk-agent-host-test-key"
# The ONNX export of the embedding model, made once per machine (under a file lock) and reused by every host.
MODEL_CACHE = Path(tempfile.gettempdir()) / "genailabs-test-models"
MODEL = "smollm2:135m"


def start_host(proxy_url: str, database_url: str, proxy_key: str, **env: str) -> tuple[ManagedProcess, str]:
    """A host with its own data dirs (Chroma, notes) and no MCP servers unless `env` says otherwise.

    The exported embedding model is cached in one temp dir shared by every test host and run.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = Path(tempfile.mkdtemp(prefix=f"agent-host-{port}-"))
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    servers = data / "mcp_servers.json"
    servers.write_text('{"mcpServers": {}}')
    defaults = {
        "CHROMA_PATH": str(data / "chroma"),
        "NOTES_DIR": str(data / "notes"),
        "MCP_SERVERS_FILE": str(servers),
        "MODEL_CACHE_DIR": str(MODEL_CACHE),
    }
    process = ManagedProcess(
        f"agent_host:{port}",
        [PYTHON, "-m", "agent_host", "--port", str(port)],
        health=lambda: http_ok(f"{url}/health"),
        env={
            "AGENT_HOST_API_KEY": HOST_KEY,
            "AGENT_HOST_PROXY_KEY": proxy_key,
            "LITELLM_BASE_URL": f"{proxy_url}/v1",
            "DATABASE_URL": database_url,
            **defaults,
            **env,
        },
        startup_timeout=60.0,
    )
    process.start()
    return process, url


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {HOST_KEY}"}


def chat_body(content: str, max_tokens: int = 8, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, **extra}


def new_session(url: str, **fields: Any) -> str:
    response = httpx.post(f"{url}/sessions", json=fields, headers=auth(), timeout=10)
    response.raise_for_status()
    return str(response.json()["id"])


def stored_messages(url: str, session_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/sessions/{session_id}/messages", headers=auth(), timeout=10)
    response.raise_for_status()
    return list(response.json())


def wait_for_messages(url: str, session_id: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        messages = stored_messages(url, session_id)
        if len(messages) >= count or time.monotonic() > deadline:
            return messages
        time.sleep(0.2)


def sse_data(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: ") and line != "data: [DONE]"]


def shared_master_key() -> str:
    """The session proxy's master key."""
    return MASTER_KEY
