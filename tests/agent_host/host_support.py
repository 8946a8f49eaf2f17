"""Starts the agent host as a real process against the test proxy and Postgres."""

import json
import time
from typing import Any

import httpx

from procs import HOST_KEY, MASTER_KEY, MODEL_CACHE, ManagedProcess, scaled, start_agent_host

__all__ = ["HOST_KEY", "MODEL_CACHE", "start_host"]
# The operator's admin key of the hosts the people tests run (conftest's people_host).
PEOPLE_ADMIN_KEY = "sk-people-admin-key-0123456"
PASSWORD = "correct-horse-battery-9"

MODEL = "smollm2:135m"


def start_host(proxy_url: str, database_url: str, proxy_key: str, **env: str) -> tuple[ManagedProcess, str]:
    return start_agent_host(proxy_url, database_url, proxy_key, **env)


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
    deadline = time.monotonic() + scaled(timeout)
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


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def admin_auth() -> dict[str, str]:
    return bearer(PEOPLE_ADMIN_KEY)


def create_person(url: str, login: str, role: str = "user", **fields: Any) -> dict[str, Any]:
    """A new account made through POST /users with the operator's admin key; its listing."""
    body = {"login": login, "password": PASSWORD, "role": role, **fields}
    response = httpx.post(f"{url}/users", json=body, headers=admin_auth(), timeout=30)
    assert response.status_code == 201, response.text
    return dict(response.json())


def sign_in(url: str, login: str, password: str = PASSWORD) -> str:
    """A sign-in token from POST /auth/login."""
    response = httpx.post(f"{url}/auth/login", json={"login": login, "password": password}, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])
