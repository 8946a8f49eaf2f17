"""Sign-in at the HTTP level: a real UI process (streamlit run app.py) on the real PostgreSQL, no browser."""

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from itsdangerous import URLSafeSerializer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from devstack.config import REPO_ROOT
from devstack.probe import free_port
from genailabs_accounts.errors import NotSignedIn
from genailabs_accounts.store import AccountStore
from procs import (
    BIN_DIR,
    MASTER_KEY,
    UI_PASSWORD,
    UI_SESSION_COOKIE,
    ManagedProcess,
    PostgresInstance,
    ensure_account,
    scaled,
    sign_in,
    start_ui,
)

pytestmark = pytest.mark.timeout(300)
SERVICE_KEY = "sk-ui-signin-service-key-0123"
ADMIN = "signin-admin"
USER = "signin-user"
BRUTE = "signin-brute"


@pytest.fixture(scope="module")
def store(postgres: PostgresInstance) -> Iterator[AccountStore]:
    instance = AccountStore(postgres.url("genailabs"), postgres.url("litellm"))
    for login, role in ((ADMIN, "admin"), (USER, "user"), (BRUTE, "user")):
        ensure_account(postgres.url("genailabs"), postgres.url("litellm"), login, role=role)
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def ui(store: AccountStore, postgres: PostgresInstance) -> Iterator[tuple[ManagedProcess, str]]:
    process, url = start_ui(
        LITELLM_BASE_URL="http://127.0.0.1:9/v1",  # no proxy: sign-in needs none
        LITELLM_API_KEY=SERVICE_KEY,
        AGENT_HOST_URL="",
        DATABASE_URL=postgres.url("genailabs"),
        HUB_DATABASE_URL=postgres.url("litellm"),
        RUNTIME_URLS="",
        LOGIN_MAX_FAILURES="5",
    )
    yield process, url
    process.stop()


@pytest.fixture
def client(ui: tuple[ManagedProcess, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui[1], timeout=scaled(30), headers={"Origin": ui[1]}) as instance:
        yield instance


def post_signin(client: httpx.Client, login: str, password: str) -> httpx.Response:
    return client.post("/signin", data={"login": login, "password": password})


def stream_status(url: str, cookie: str | None) -> int:
    """The HTTP status of a websocket handshake on Streamlit's /_stcore/stream (101 when it opens)."""
    headers = {"Cookie": f"{UI_SESSION_COOKIE}={cookie}"} if cookie else {}
    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    try:
        with ws_connect(ws_url, additional_headers=headers, subprotocols=["streamlit"], open_timeout=scaled(20)):  # type: ignore[list-item]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_the_page_without_a_session_goes_to_the_signin_form(client: httpx.Client) -> None:
    for path in ("/", "/Usage", "/Admin"):
        reply = client.get(path)
        assert reply.status_code == 303 and reply.headers["location"] == "/signin", path
    form = client.get("/signin")
    assert form.status_code == 200
    assert '<form method="post" action="/signin">' in form.text
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert client.get("/_stcore/health").status_code == 200  # the health check stays open
    assert client.get("/_stcore/metrics").status_code == 401  # Streamlit's own routes do not


def test_signin_sets_an_http_only_same_site_cookie_and_opens_the_page(client: httpx.Client) -> None:
    reply = post_signin(client, ADMIN, UI_PASSWORD)
    assert reply.status_code == 303 and reply.headers["location"] == "/"
    cookie = reply.headers.get_list("set-cookie")[0]
    assert cookie.startswith(f"{UI_SESSION_COOKIE}=")
    attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")[1:]}
    assert "httponly" in attributes and attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["path"].strip() == "Path=/"
    assert "secure" not in attributes  # plain http here; over https the cookie is Secure
    page = client.get("/")
    assert page.status_code == 200 and "<noscript>" in page.text  # Streamlit's own index page
    assert client.get("/signin").headers.get("location") == "/"  # signed in: the form sends you on


def test_behind_an_https_proxy_the_cookie_is_secure(client: httpx.Client) -> None:
    # uvicorn believes X-Forwarded-Proto from 127.0.0.1 (its forwarded_allow_ips): a TLS-terminating proxy.
    reply = client.post(
        "/signin", data={"login": USER, "password": UI_PASSWORD}, headers={"X-Forwarded-Proto": "https"}
    )
    assert reply.status_code == 303
    cookie = reply.headers.get_list("set-cookie")[0]
    assert cookie.startswith(UI_SESSION_COOKIE) and "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_an_idle_session_expires_and_the_signin_page_says_so(client: httpx.Client, postgres: PostgresInstance) -> None:
    cookie = post_signin(client, USER, UI_PASSWORD).cookies[UI_SESSION_COOKIE]
    _, token = URLSafeSerializer("unused", salt="genailabs-session").loads_unsafe(cookie)
    with psycopg.connect(postgres.url("genailabs"), autocommit=True) as conn:  # idle for longer than 120 minutes
        conn.execute(
            "UPDATE account_sessions SET last_seen_at = now() - interval '3 hours' WHERE token_hash = %s",
            (hashlib.sha256(str(token).encode()).hexdigest(),),
        )
    reply = client.get("/")
    assert reply.status_code == 303 and reply.headers["location"] == "/signin"
    page = client.get("/signin")
    assert "expired after 120 minutes idle" in page.text and 'class="note"' in page.text


def test_the_ui_refuses_to_start_beyond_loopback_without_a_cookie_secret(postgres: PostgresInstance) -> None:
    env = {
        **os.environ,
        "LITELLM_API_KEY": SERVICE_KEY,
        "DATABASE_URL": postgres.url("genailabs"),
        "PUBLISHED_ADDRESS": "192.0.2.10",  # published on a LAN address, whatever it binds here
        "UI_COOKIE_SECRET": "",
    }
    argv = [str(BIN_DIR / "streamlit"), "run", str(REPO_ROOT / "streamlit_service" / "app.py"), "--server.port",
            str(free_port()), "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=scaled(120), cwd=REPO_ROOT)
    assert result.returncode != 0
    assert "refusing to serve on 192.0.2.10 without UI_COOKIE_SECRET" in result.stdout + result.stderr


def test_wrong_password_and_unknown_login_get_the_same_generic_error(client: httpx.Client) -> None:
    wrong = post_signin(client, USER, "not-the-password")
    unknown = post_signin(client, "nobody-by-this-name", "not-the-password")
    for reply in (wrong, unknown):
        assert reply.status_code == 401
        assert "wrong login or password" in reply.text
        assert UI_SESSION_COOKIE not in reply.headers.get("set-cookie", "")
    assert wrong.text.replace(USER, "") == unknown.text.replace("nobody-by-this-name", "")


def test_forged_or_unsigned_cookies_are_refused(
    client: httpx.Client, store: AccountStore, ui: tuple[ManagedProcess, str]
) -> None:
    token = store.sign_in(USER, UI_PASSWORD).token  # a live session: only the signature is wrong below
    forged = {
        "raw token": token,
        "other secret": URLSafeSerializer("not-the-secret", salt="genailabs-session").dumps(token),
        "tampered": sign_in(ui[1], USER)[:-2] + "xx",
    }
    for what, value in forged.items():
        reply = httpx.get(f"{ui[1]}/", cookies={UI_SESSION_COOKIE: value}, timeout=scaled(30))
        assert reply.status_code == 303 and reply.headers["location"] == "/signin", what
        assert stream_status(ui[1], value) == 403, what
    assert stream_status(ui[1], None) == 403
    assert stream_status(ui[1], sign_in(ui[1], USER)) == 101


def test_signout_ends_the_session_on_the_server(client: httpx.Client, store: AccountStore) -> None:
    reply = post_signin(client, USER, UI_PASSWORD)
    cookie = reply.cookies[UI_SESSION_COOKIE]
    assert client.get("/").status_code == 200
    out = client.post("/signout")
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert f'{UI_SESSION_COOKIE}=""' in out.headers.get_list("set-cookie")[0]
    assert "You are signed out." in client.get("/signin").text  # the note cookie, shown once
    # The old cookie, kept by someone who copied it, no longer opens anything.
    again = httpx.get(f"{client.base_url}/", cookies={UI_SESSION_COOKIE: cookie})
    assert again.status_code == 303
    # The token inside the cookie (readable without the secret, which only signs it) is ended in the database.
    _, token = URLSafeSerializer("unused", salt="genailabs-session").loads_unsafe(cookie)
    with pytest.raises(NotSignedIn):
        store.resolve(str(token))


def test_cross_site_posts_are_refused(client: httpx.Client) -> None:
    evil = {"Origin": "http://evil.example"}
    reply = client.post("/signin", data={"login": USER, "password": UI_PASSWORD}, headers=evil)
    assert reply.status_code == 403 and UI_SESSION_COOKIE not in reply.headers.get("set-cookie", "")
    post_signin(client, USER, UI_PASSWORD)
    assert client.post("/signout", headers=evil).status_code == 403
    assert client.get("/").status_code == 200  # still signed in
    sneaky = client.post("/signin", data={"login": USER, "password": UI_PASSWORD}, headers={"Origin": "null"})
    assert sneaky.status_code == 403


def test_brute_force_on_one_login_is_slowed_then_locked(client: httpx.Client) -> None:
    statuses = []
    for _ in range(12):
        reply = post_signin(client, BRUTE, "guess-guess-guess")
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            assert "try again in" in reply.text and int(reply.headers["retry-after"]) >= 1
            if "locked" in reply.text:
                break
            time.sleep(int(reply.headers["retry-after"]))  # waiting out the slow-down, not measuring it
    assert statuses[:3] == [401, 401, 401]  # the first failures are free
    assert statuses[-1] == 429 and len(statuses) < 12  # then slowed, and locked at LOGIN_MAX_FAILURES (5)
    locked = post_signin(client, BRUTE, UI_PASSWORD)  # even the right password waits out the lock
    assert locked.status_code == 429 and "locked" in locked.text
    assert post_signin(client, USER, UI_PASSWORD).status_code == 303  # other logins are not affected


def test_no_response_carries_the_master_key_or_the_service_key(client: httpx.Client) -> None:
    post_signin(client, ADMIN, UI_PASSWORD)
    paths = ["/signin", "/", "/Usage", "/Admin", "/_stcore/host-config", "/_stcore/health", "/manifest.json"]
    replies = [client.get(path) for path in paths]
    replies += [post_signin(client, ADMIN, "wrong-password"), client.post("/signout"), client.get("/")]
    for reply in replies:
        seen = reply.text + "".join(f"{name}: {value}" for name, value in reply.headers.items())
        for secret in (MASTER_KEY, SERVICE_KEY):
            assert secret not in seen, reply.request.url
