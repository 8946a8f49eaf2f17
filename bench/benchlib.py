"""What every benchmark prints the same way: the machine it ran on, and percentiles; and what the benchmarks
of the chat UI share: a signed-in browser, a person's seeded chats, and removing the accounts they made."""

import os
import platform
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psycopg

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

SESSION_COOKIE = "genailabs_session"


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    with Path("/proc/cpuinfo").open() as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile, `share` in [0, 1]."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def print_table(title: str, rows: list[tuple[str, str, str]], value_width: int = 10) -> None:
    """The machine-noted title, then one row per measure: name, value, note."""
    print(title)
    width = max(len(row[0]) for row in rows)
    print(f"{'measure':<{width}}  {'value':>{value_width}}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {note}")


def sign_in_cookie(ui: str, login: str, password: str) -> str:
    """Signs in through the UI's /signin form as a browser would; the session cookie's value."""
    reply = httpx.post(f"{ui}/signin", data={"login": login, "password": password}, headers={"Origin": ui})
    cookie = reply.cookies.get(SESSION_COOKIE)
    if reply.status_code != 303 or not cookie:
        raise RuntimeError(f"sign-in as {login} failed: {reply.status_code}")
    return cookie


def sign_in_context(context: "BrowserContext", ui: str, login: str, password: str) -> None:
    """Every page of this browser context opens the UI signed in as `login`."""
    cookie = sign_in_cookie(ui, login, password)
    context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "domain": httpx.URL(ui).host, "path": "/"}])


def seed_sessions(url: str, owner: str, count: int, tag: str, model: str = "smollm2:135m") -> None:
    """`count` agent-host sessions of two messages each ("bench question i", "bench answer i ...") for `owner`,
    titled tag-0000 ... and one second apart, the last one newest (now), by COPY."""
    ids = [uuid.uuid4() for _ in range(count)]
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy("COPY agent_sessions (id, title, model, owner_id, updated_at) FROM STDIN") as copy:
            for i, session_id in enumerate(ids):
                copy.write_row((session_id, f"{tag}-{i:04d}", model, owner, now - timedelta(seconds=count - 1 - i)))
        with cursor.copy("COPY agent_messages (session_id, role, content, tokens) FROM STDIN") as copy:
            for i, session_id in enumerate(ids):
                copy.write_row((session_id, "user", f"bench question {i}", 4))
                copy.write_row((session_id, "assistant", f"bench answer {i} " * 20, 60))


def delete_sessions(url: str, ids: list[str]) -> None:
    """Every agent-host session (with its messages) these accounts own."""
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM agent_sessions WHERE owner_id = ANY(%s::uuid[])", (ids,))


def remove_accounts(genailabs_url: str, hub_url: str, ids: list[str]) -> None:
    """The accounts, their sessions, their failed sign-ins and their proxy keys (revoked in the hub)."""
    from hub.keystore import KeyStore, connect  # the caller has set up the hub's environment

    delete_sessions(genailabs_url, ids)
    with psycopg.connect(genailabs_url) as conn:
        conn.execute(
            "DELETE FROM login_attempts WHERE login IN (SELECT login FROM accounts WHERE id = ANY(%s::uuid[]))", (ids,)
        )
        conn.execute("DELETE FROM accounts WHERE id = ANY(%s::uuid[])", (ids,))
    with connect(hub_url, 5.0) as conn:
        store = KeyStore(conn)
        for account_id in ids:
            store.revoke_for_user(account_id)
