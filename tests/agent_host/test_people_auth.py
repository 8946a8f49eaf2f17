"""People on a real agent host: sign-in, who am I, sign-out, personal API keys, throttled sign-in, admin routes."""

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import openai
import pytest
from host_support import (
    HOST_KEY,
    MODEL,
    PASSWORD,
    PEOPLE_ADMIN_KEY,
    admin_auth,
    bearer,
    chat_body,
    create_person,
    sign_in,
)
from mcp_support import host_mcp_client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from procs import MASTER_KEY, ManagedProcess, scaled


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    return dict(body["error"])


def test_sign_in_gives_a_token_that_says_who_i_am(people_host: str) -> None:
    login = unique("ada")
    made = create_person(people_host, login, name="Ada Lovelace")
    response = httpx.post(f"{people_host}/auth/login", json={"login": login.upper(), "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token"].startswith("gls_") and body["idle_expires_at"]
    assert body["account"]["id"] == made["id"] and body["account"]["role"] == "user"
    me = httpx.get(f"{people_host}/auth/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["login"] == login and me.json()["name"] == "Ada Lovelace"
    assert "password" not in me.text and "hash" not in me.text


def test_the_access_log_names_who_made_each_request(people_host_process: tuple[ManagedProcess, str]) -> None:
    process, url = people_host_process
    login = unique("ola")
    person = create_person(url, login)
    marker = uuid.uuid4().hex
    headers = {**bearer(sign_in(url, login)), "x-request-id": marker}
    assert httpx.get(f"{url}/auth/me", headers=headers).status_code == 200
    deadline = time.monotonic() + scaled(10)
    while not (lines := [json.loads(line) for line in process.log_tail(200).splitlines() if marker in line]):
        assert time.monotonic() < deadline, "no access-log line for the request"
        time.sleep(0.2)
    assert lines[-1]["user"] == person["id"] and lines[-1]["status"] == 200


def test_sign_out_ends_the_token(people_host: str) -> None:
    login = unique("bob")
    create_person(people_host, login)
    token = sign_in(people_host, login)
    assert httpx.get(f"{people_host}/sessions", headers=bearer(token)).status_code == 200
    assert httpx.post(f"{people_host}/auth/logout", headers=bearer(token)).status_code == 204
    for path in ("/auth/me", "/sessions"):
        refused = httpx.get(f"{people_host}{path}", headers=bearer(token))
        assert refused.status_code == 401
        assert error_of(refused)["type"] == "unauthorized"
        assert refused.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "credential",
    ["", "gls_" + "x" * 43, "glk_" + "y" * 43, "sk-wrong", f"{HOST_KEY}x"],
    ids=["none", "unknown-token", "unknown-key", "wrong-key", "operator-key-plus-one"],
)
def test_a_missing_or_unknown_credential_is_401_with_the_usual_error_body(people_host: str, credential: str) -> None:
    headers = bearer(credential) if credential else {}
    for method, path in [
        ("GET", "/auth/me"),
        ("GET", "/sessions"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/usage"),
    ]:
        response = httpx.request(method, f"{people_host}{path}", json=chat_body("hi"), headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert error_of(response)["type"] == "unauthorized"


def test_a_wrong_password_and_an_unknown_login_get_the_same_answer(people_host: str) -> None:
    login = unique("carol")
    create_person(people_host, login)
    wrong = httpx.post(f"{people_host}/auth/login", json={"login": login, "password": "not-the-password"})
    nobody = httpx.post(f"{people_host}/auth/login", json={"login": unique("nobody"), "password": "whatever-it-is"})
    assert wrong.status_code == nobody.status_code == 401
    assert error_of(wrong) == error_of(nobody)


def test_a_disabled_account_cannot_sign_in_and_its_tokens_stop(people_host: str) -> None:
    login = unique("dave")
    person = create_person(people_host, login)
    token = sign_in(people_host, login)
    disabled = httpx.patch(f"{people_host}/users/{person['id']}", json={"disabled": True}, headers=admin_auth())
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert httpx.get(f"{people_host}/auth/me", headers=bearer(token)).status_code == 401
    refused = httpx.post(f"{people_host}/auth/login", json={"login": login, "password": PASSWORD})
    assert refused.status_code == 401 and error_of(refused)["type"] == "account_disabled"
    enabled = httpx.patch(f"{people_host}/users/{person['id']}", json={"disabled": False}, headers=admin_auth())
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert httpx.get(f"{people_host}/auth/me", headers=bearer(sign_in(people_host, login))).status_code == 200


def test_a_personal_key_works_with_the_openai_sdk_until_it_is_revoked(people_host: str) -> None:
    login = unique("erin")
    create_person(people_host, login)
    token = sign_in(people_host, login)
    made = httpx.post(f"{people_host}/auth/keys", json={"name": "my script"}, headers=bearer(token))
    assert made.status_code == 201, made.text
    key, public = made.json()["key"], made.json()["api_key"]
    assert key.startswith("glk_") and key.startswith(public["prefix"]) and key not in str(public)
    listed = httpx.get(f"{people_host}/auth/keys", headers=bearer(token)).json()
    assert [k["id"] for k in listed] == [public["id"]] and key not in str(listed)

    sdk = openai.OpenAI(base_url=f"{people_host}/v1", api_key=key, max_retries=0, timeout=scaled(120))
    reply = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8)
    assert reply.choices[0].message.content is not None
    assert httpx.get(f"{people_host}/auth/me", headers=bearer(key)).json()["login"] == login

    revoked = httpx.delete(f"{people_host}/auth/keys/{public['id']}", headers=bearer(token))
    assert revoked.status_code == 204
    deadline = time.monotonic() + scaled(15)
    while True:
        try:
            sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi."}], max_tokens=4)
        except openai.AuthenticationError as exc:
            assert exc.status_code == 401
            break
        assert time.monotonic() < deadline, "a revoked key still works"
        time.sleep(0.5)
    assert httpx.get(f"{people_host}/auth/keys", headers=bearer(token)).json()[0]["revoked_at"]


def test_someone_elses_key_id_is_404(people_host: str) -> None:
    owner, other = unique("fay"), unique("gus")
    create_person(people_host, owner)
    create_person(people_host, other)
    owner_token, other_token = sign_in(people_host, owner), sign_in(people_host, other)
    key_id = httpx.post(f"{people_host}/auth/keys", json={"name": "k"}, headers=bearer(owner_token)).json()["api_key"]
    refused = httpx.delete(f"{people_host}/auth/keys/{key_id['id']}", headers=bearer(other_token))
    assert refused.status_code == 404
    assert httpx.get(f"{people_host}/auth/keys", headers=bearer(owner_token)).json()[0]["revoked_at"] is None


def test_brute_force_on_one_login_is_slowed_then_locked(people_host: str) -> None:
    """LOGIN_MAX_FAILURES=5 on this host: three free failures, then a growing wait, then a lock."""
    login = unique("hal")
    create_person(people_host, login)

    def attempt(password: str) -> httpx.Response:
        return httpx.post(f"{people_host}/auth/login", json={"login": login, "password": password}, timeout=30)

    answers = [attempt("wrong-password-1") for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    slowed = None
    for _ in range(10):  # hammering: some attempt lands inside the wait, however slow this machine is
        response = attempt("wrong-password-2")
        if response.status_code == 429:
            slowed = response
            break
    assert slowed is not None, "failures after the free ones were never slowed"
    assert error_of(slowed)["type"] == "too_many_attempts" and int(slowed.headers["retry-after"]) >= 1
    # Waiting out each Retry-After, the failures reach LOGIN_MAX_FAILURES: then the login is locked.
    locked = None
    for _ in range(10):
        response = attempt("wrong-password-3")
        if response.status_code == 429:
            wait = int(response.headers["retry-after"])
            if wait > 10:
                locked = response
                break
            time.sleep(wait + 0.2)
    assert locked is not None, "the login was never locked"
    assert "locked" in error_of(locked)["message"]
    assert int(locked.headers["retry-after"]) <= 60  # LOGIN_LOCK_MINUTES=1
    # Locked means locked: the right password is not even checked.
    assert attempt(PASSWORD).status_code == 429
    # Other logins are not affected.
    other = unique("ivy")
    create_person(people_host, other)
    assert sign_in(people_host, other).startswith("gls_")


def test_a_person_is_not_an_admin(people_host: str) -> None:
    login = unique("jay")
    person = create_person(people_host, login)
    headers = bearer(sign_in(people_host, login))
    for method, path, body in [
        ("GET", "/users", None),
        ("POST", "/users", {"login": unique("x"), "password": PASSWORD}),
        ("PATCH", f"/users/{person['id']}", {"role": "admin"}),
        ("POST", f"/users/{person['id']}/password", {"password": "another-password"}),
        ("GET", "/usage?all=true", None),
        ("POST", "/mcp/servers", {"name": "web", "config": {"url": "http://127.0.0.1:9/mcp"}}),
        ("DELETE", "/mcp/servers/web", None),
    ]:
        response = httpx.request(method, f"{people_host}{path}", json=body, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert error_of(response)["type"] == "forbidden"
    assert httpx.get(f"{people_host}/auth/me", headers=headers).json()["role"] == "user"


def test_the_operator_api_key_is_the_first_admins_person_without_admin_rights(people_host: str) -> None:
    me = httpx.get(f"{people_host}/auth/me", headers=bearer(HOST_KEY))
    assert me.status_code == 200 and me.json()["role"] == "user"
    admin = httpx.get(f"{people_host}/auth/me", headers=admin_auth()).json()
    assert admin["id"] == me.json()["id"] and admin["role"] == "admin"
    assert httpx.get(f"{people_host}/users", headers=bearer(HOST_KEY)).status_code == 403


def test_an_admin_manages_accounts(people_host: str) -> None:
    admin_login = unique("kim")
    create_person(people_host, admin_login, role="admin")
    admin = bearer(sign_in(people_host, admin_login))
    login = unique("lee")
    made = httpx.post(
        f"{people_host}/users",
        json={"login": login, "password": PASSWORD, "models": [MODEL], "rpm": 30, "max_budget": 1.5},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    person = made.json()
    assert (person["models"], person["rpm"], person["max_budget"], person["spend"]) == ([MODEL], 30, 1.5, 0.0)
    taken = httpx.post(f"{people_host}/users", json={"login": login, "password": PASSWORD}, headers=admin)
    assert taken.status_code == 409 and error_of(taken)["type"] == "login_taken"

    changed = httpx.patch(f"{people_host}/users/{person['id']}", json={"rpm": None, "role": "admin"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["rpm"], changed.json()["models"], changed.json()["role"]) == (None, [MODEL], "admin")
    listed = {p["login"]: p for p in httpx.get(f"{people_host}/users", headers=admin).json()}
    assert listed[login]["role"] == "admin" and listed[login]["max_budget"] == 1.5

    token = sign_in(people_host, login)
    reset = httpx.post(
        f"{people_host}/users/{person['id']}/password", json={"password": "new-password-42"}, headers=admin
    )
    assert reset.status_code == 204
    assert httpx.get(f"{people_host}/auth/me", headers=bearer(token)).status_code == 401  # sign-ins end
    assert sign_in(people_host, login, "new-password-42").startswith("gls_")

    missing = httpx.patch(f"{people_host}/users/{uuid.uuid4()}", json={"disabled": True}, headers=admin)
    assert missing.status_code == 404
    assert httpx.patch(f"{people_host}/users/not-a-uuid", json={"disabled": True}, headers=admin).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"login": "x" * 65, "password": PASSWORD},
        {"login": "ok", "password": "p" * 1025},
        {"login": "ok", "password": PASSWORD, "role": "root"},
        {"login": "ok", "password": PASSWORD, "rpm": 0},
        {"login": "ok", "password": PASSWORD, "models": ["m"] * 101},
        {"login": "ok", "password": PASSWORD, "unknown": 1},
        {"login": "bad login!", "password": PASSWORD},
        {"login": "short-pass", "password": "1234"},
    ],
    ids=["long-login", "long-password", "role", "rpm", "models", "unknown-field", "login-chars", "short-password"],
)
def test_bad_account_input_is_422(people_host: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{people_host}/users", json=body, headers=admin_auth())
    assert response.status_code == 422, response.text
    assert error_of(response)["type"] in {"invalid_request", "invalid_input"}


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/auth/login", '{"login": "ok", "password": "pass\\ud800word"}'),
        ("/auth/login", '{"login": "ok", "password": "pass\\u0000word"}'),
        ("/users", '{"login": "ok-surrogate", "password": "long-enough-1", "name": "A\\udfffB"}'),
        ("/users", '{"login": "ok-nul", "password": "long-enough-1", "models": ["m\\u0000"]}'),
    ],
)
def test_text_postgres_or_argon2_cannot_take_is_422_not_500(people_host: str, path: str, raw: str) -> None:
    headers = {"content-type": "application/json", **admin_auth()}
    response = httpx.post(f"{people_host}{path}", content=raw.encode(), headers=headers)
    assert response.status_code == 422, response.text
    assert error_of(response)["type"] == "invalid_request"


def test_an_oversized_sign_in_is_refused_before_any_hashing(people_host: str) -> None:
    response = httpx.post(f"{people_host}/auth/login", json={"login": "someone", "password": "p" * 5000})
    assert response.status_code == 422


def test_no_secret_key_appears_in_any_answer_of_auth_or_users(people_host: str) -> None:
    login = unique("max")
    person = create_person(people_host, login)
    token = sign_in(people_host, login)
    key = httpx.post(f"{people_host}/auth/keys", json={"name": "k"}, headers=bearer(token)).json()["key"]
    answers = [
        httpx.get(f"{people_host}/auth/me", headers=bearer(token)),
        httpx.get(f"{people_host}/auth/keys", headers=bearer(token)),
        httpx.post(f"{people_host}/auth/login", json={"login": login, "password": PASSWORD}),
        httpx.get(f"{people_host}/users", headers=admin_auth()),
        httpx.patch(f"{people_host}/users/{person['id']}", json={"rpm": 10}, headers=admin_auth()),
        httpx.get(f"{people_host}/auth/me", headers=admin_auth()),
        httpx.get(f"{people_host}/usage?all=true", headers=admin_auth()),
        httpx.get(f"{people_host}/auth/me", headers=bearer(MASTER_KEY)),
    ]
    secrets = [MASTER_KEY, HOST_KEY, PEOPLE_ADMIN_KEY, key, "sk-"]
    for answer in answers:
        for secret in secrets:
            assert secret not in answer.text, (str(answer.url), secret)
    assert token not in answers[0].text and token not in answers[1].text


def test_the_websocket_and_the_hosts_mcp_server_take_a_persons_token(people_host: str) -> None:
    login = unique("nia")
    create_person(people_host, login)
    token = sign_in(people_host, login)
    ws_url = people_host.replace("http://", "ws://") + "/ws/chat"
    chat = {"type": "chat", "model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    for connection in (connect(ws_url, additional_headers=bearer(token)), connect(f"{ws_url}?api_key={token}")):
        with connection as ws:
            ws.send(json.dumps(chat))
            events = [json.loads(ws.recv(timeout=scaled(120)))]
            while events[-1]["type"] not in ("done", "error"):
                events.append(json.loads(ws.recv(timeout=scaled(120))))
        assert events[-1]["type"] == "done", events[-1]
    with pytest.raises(InvalidStatus) as refused, connect(f"{ws_url}?api_key=gls_{'z' * 43}"):
        pass
    assert refused.value.response.status_code == 403

    async def tools(credential: str) -> list[str]:
        async with host_mcp_client(people_host, credential) as client:
            return [tool.name for tool in (await client.list_tools()).tools]

    assert "list_sessions" in asyncio.run(tools(token))
    refused_mcp = httpx.post(f"{people_host}/mcp", json={}, headers=bearer(f"gls_{'z' * 43}"))
    assert refused_mcp.status_code == 401 and error_of(refused_mcp)["type"] == "unauthorized"
