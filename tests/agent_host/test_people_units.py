"""The host's side of people without a host: the credential cache, the authenticator, the proxy header hook."""

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from agent_host.errors import Unauthorized
from agent_host.people.auth import OPERATOR, Authenticator, CredentialCache
from agent_host.people.identity import USER_HEADER, acting_as, acting_for, proxy_http_client
from genailabs_accounts.errors import AccountsUnavailable, NotSignedIn
from genailabs_accounts.models import Account

ADA = Account(id="7c0d5a34-3f8e-4c59-9d0b-2f1a6f4f8a01", login="ada", name="Ada", role="user", disabled=False,
              created_at=datetime(2026, 1, 2, tzinfo=UTC))  # fmt: skip
ROOT = ADA.model_copy(update={"id": "0b7c2f6e-86a4-4a55-8f62-3a1e5d9c4b02", "login": "root", "role": "admin"})


class FakeAccounts:
    """AccountStore's resolve and first_admin, counting calls; `down` makes them fail as a dead database does."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False
        self.admin: Account | None = ROOT

    def resolve(self, credential: str) -> Account:
        self.calls += 1
        if self.down:
            raise AccountsUnavailable("down")
        if credential == "gls_ada":
            return ADA
        raise NotSignedIn("this sign-in has expired: sign in again")

    def first_admin(self) -> Account | None:
        self.calls += 1
        if self.down:
            raise AccountsUnavailable("down")
        return self.admin


def authenticator(accounts: FakeAccounts, ttl: float = 60.0) -> Authenticator:
    return Authenticator(accounts, SecretStr("op-api"), SecretStr("op-admin"), ttl)  # type: ignore[arg-type]


def test_the_cache_keeps_a_credential_for_its_ttl_and_forgets_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("agent_host.people.auth.time.monotonic", lambda: now[0])
    cache = CredentialCache(ttl=5.0, size=2)
    cache.put("a", ADA)
    assert cache.get("a") == ADA
    now[0] += 5.1
    assert cache.get("a") is None
    cache.put("a", ADA)
    cache.put("b", ROOT)
    cache.put("c", ADA)  # over the size: the oldest goes
    assert cache.get("a") is None and cache.get("b") == ROOT
    cache.forget_account(ADA.id)
    assert cache.get("c") is None and cache.get("b") == ROOT
    cache.forget("b")
    assert cache.get("b") is None


async def test_a_resolved_token_is_asked_once_within_the_ttl_and_again_after_forget() -> None:
    accounts = FakeAccounts()
    auth = authenticator(accounts)
    assert await auth.resolve("gls_ada") == ADA
    assert await auth.resolve("gls_ada") == ADA
    assert accounts.calls == 1
    auth.forget("gls_ada")
    await auth.resolve("gls_ada")
    assert accounts.calls == 2


async def test_an_unknown_token_is_unauthorized_with_the_stores_reason_and_never_cached() -> None:
    accounts = FakeAccounts()
    auth = authenticator(accounts)
    for _ in range(2):
        with pytest.raises(Unauthorized, match="expired"):
            await auth.resolve("gls_someone")
    assert accounts.calls == 2
    with pytest.raises(Unauthorized):
        await auth.resolve("not-a-key")


async def test_the_operator_keys_are_the_first_admin_the_api_key_without_admin_rights() -> None:
    accounts = FakeAccounts()
    auth = authenticator(accounts)
    admin = await auth.resolve("op-admin")
    person = await auth.resolve("op-api")
    assert admin == ROOT and admin.is_admin
    assert person.id == ROOT.id and not person.is_admin


async def test_no_admin_yet_says_how_to_make_one() -> None:
    accounts = FakeAccounts()
    accounts.admin = None
    with pytest.raises(Unauthorized, match="genailabs_accounts users create"):
        await authenticator(accounts).resolve("op-admin")


async def test_with_the_accounts_database_down_the_operator_key_is_the_last_admin_seen_else_a_stand_in() -> None:
    accounts = FakeAccounts()
    accounts.down = True
    assert await authenticator(accounts, ttl=0).resolve("op-admin") == OPERATOR
    seen = authenticator(accounts, ttl=0)
    accounts.down = False
    await seen.resolve("op-admin")
    accounts.down = True
    assert await seen.resolve("op-admin") == ROOT
    with pytest.raises(Exception, match="down") as raised:
        await seen.resolve("gls_ada")  # a person's token cannot be checked at all
    assert getattr(raised.value, "status", None) == 503


@pytest.fixture
def stand_in_proxy() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server standing in for the proxy: records each request's path and headers."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, "headers": dict(self.headers)})
            body = json.dumps({"data": []}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


async def test_the_proxy_client_names_the_person_of_the_current_task(
    stand_in_proxy: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = stand_in_proxy
    async with proxy_http_client(5.0) as client:
        await client.get(f"{url}/v1/models")  # nobody being served: the service key acts as itself
        with acting_as(ADA.id):
            await client.get(f"{url}/v1/models")
            await asyncio.create_task(client.get(f"{url}/v1/chat"))  # a task started while serving Ada
            await client.get(f"{url}/v1/model/info")  # shared metadata: asked as the service
        await client.get(f"{url}/v1/models", headers={USER_HEADER: "forged"})
    named = [request["headers"].get(USER_HEADER) for request in seen]
    assert named == [None, ADA.id, ADA.id, None, None]
    assert acting_for.get() is None
