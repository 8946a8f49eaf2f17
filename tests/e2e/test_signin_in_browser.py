"""Sign-in in a real browser (headless Debian chromium): the UI in proxy-only mode on the real proxy, runtimes and
PostgreSQL, with a service key as its proxy key and three people: an admin, a user, and a user allowed one model."""

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from browser_actions import open_expander
from playwright.sync_api import Browser, BrowserContext, Error, Page, Response, WebSocket, expect

from genailabs_accounts.models import Account
from procs import MASTER_KEY, SCREENSHOTS, UI_ADMIN_LOGIN, UI_PASSWORD, PostgresInstance, scaled, start_ui

pytestmark = pytest.mark.timeout(420)
USER = "e2e-user"
RESTRICTED = "e2e-one-model"
ALLOWED_MODEL = "qwen2.5:0.5b"
OTHER_MODEL = "smollm2:135m"  # the UI's default model: the restricted person's chat starts on it


@pytest.fixture(scope="module")
def people(ui_account: Callable[..., Account]) -> dict[str, Account]:
    return {
        UI_ADMIN_LOGIN: ui_account(),
        USER: ui_account(login=USER, role="user"),
        RESTRICTED: ui_account(login=RESTRICTED, role="user", models=[ALLOWED_MODEL]),
    }


@pytest.fixture(scope="module")
def ui_url(
    proxy: str, postgres: PostgresInstance, runtimes: tuple[str, str], ui_service_key: str, people: dict[str, Account]
) -> Iterator[str]:
    process, url = start_ui(
        LITELLM_BASE_URL=f"{proxy}/v1",
        LITELLM_API_KEY=ui_service_key,
        AGENT_HOST_URL="",
        DATABASE_URL=postgres.url("genailabs"),
        HUB_DATABASE_URL=postgres.url("litellm"),
        RUNTIME_URLS=",".join(runtimes),
        DEFAULT_MODEL=OTHER_MODEL,
    )
    yield url
    process.stop()


@pytest.fixture
def fresh(browser: Browser) -> Iterator[Page]:
    """A tab in a new context that has not signed in."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(scaled(30_000))
    yield tab
    context.close()


def sign_in_with_the_form(page: Page, ui_url: str, login: str, password: str) -> None:
    page.goto(ui_url)
    expect(page).to_have_url(f"{ui_url}/signin")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sidebar(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("[data-testid=stSidebar]")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_sign_in_and_a_reload_keeps_the_session(
    fresh: Page, ui_url: str, record_property: Callable[[str, object], None]
) -> None:
    fresh.goto(ui_url)
    expect(fresh).to_have_url(f"{ui_url}/signin")
    fresh.get_by_label("Login").fill(USER)
    fresh.get_by_label("Password").fill(UI_PASSWORD)
    started = time.monotonic()
    fresh.get_by_role("button", name="Sign in").click()
    expect(fresh.locator("[data-testid=stChatInput] textarea")).to_be_visible()
    # A figure for the record (the "sign-in to first paint"), not a limit: nothing asserts on it.
    record_property("signin_click_to_chat_input_ms", round((time.monotonic() - started) * 1000))
    expect(fresh).to_have_url(f"{ui_url}/")
    expect(sidebar(fresh).get_by_text("Signed in as")).to_contain_text(USER)
    expect(fresh.get_by_role("button", name="Deploy")).to_have_count(0)  # client.toolbarMode = "minimal"
    cookie = next(c for c in fresh.context.cookies() if c["name"] == "genailabs_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert fresh.evaluate("document.cookie").find("genailabs_session") == -1  # page scripts cannot read it
    shot(fresh, "signed-in")
    fresh.reload()
    expect(fresh).to_have_url(f"{ui_url}/")
    expect(sidebar(fresh).get_by_text("Signed in as")).to_contain_text(USER)


def test_a_wrong_password_shows_the_generic_error(fresh: Page, ui_url: str) -> None:
    sign_in_with_the_form(fresh, ui_url, USER, "not-the-password")
    expect(fresh.get_by_role("alert")).to_have_text("wrong login or password")
    expect(fresh).to_have_url(f"{ui_url}/signin")
    expect(fresh.get_by_label("Login")).to_have_value(USER)
    sign_in_with_the_form(fresh, ui_url, "nobody-of-that-name", "not-the-password")
    expect(fresh.get_by_role("alert")).to_have_text("wrong login or password")


def test_sign_out_ends_the_session(fresh: Page, ui_url: str, browser: Browser) -> None:
    sign_in_with_the_form(fresh, ui_url, USER, UI_PASSWORD)
    expect(sidebar(fresh).get_by_text("Signed in as")).to_be_visible()
    kept = next(c for c in fresh.context.cookies() if c["name"] == "genailabs_session")
    sidebar(fresh).get_by_role("button", name="Sign out").click()
    expect(fresh).to_have_url(f"{ui_url}/signin")
    expect(fresh.get_by_role("status")).to_have_text("You are signed out.")
    fresh.goto(ui_url)
    expect(fresh).to_have_url(f"{ui_url}/signin")
    # The cookie someone copied before the sign-out opens nothing either: the session ended on the server.
    other = browser.new_context()
    try:
        other.add_cookies([kept])
        tab = other.new_page()
        tab.goto(ui_url)
        expect(tab).to_have_url(f"{ui_url}/signin")
        expect(tab.get_by_role("status")).to_contain_text("Your session ended")
    finally:
        other.close()


def test_a_non_admin_gets_no_admin_page(signed_in_context: Callable[..., BrowserContext], ui_url: str) -> None:
    tab = signed_in_context(ui_url, USER).new_page()
    tab.goto(ui_url)
    menu = tab.locator("[data-testid=stSidebarNav]")
    expect(menu.get_by_role("link", name="Chat")).to_be_visible()  # the chat page's name, no longer "main"
    expect(menu.get_by_role("link", name="Usage")).to_be_visible()
    expect(menu.get_by_role("link", name="Admin")).to_have_count(0)
    tab.goto(f"{ui_url}/Admin")  # typed in by hand: not one of this person's pages
    expect(sidebar(tab).get_by_text("Signed in as")).to_be_visible()
    expect(tab.get_by_role("heading", name="Accounts")).to_have_count(0)
    expect(tab.get_by_text("Add an account")).to_have_count(0)


def test_an_admin_adds_an_account_and_that_person_can_sign_in(
    signed_in_context: Callable[..., BrowserContext], ui_url: str, fresh: Page
) -> None:
    login = f"new-{uuid.uuid4().hex[:6]}"
    tab = signed_in_context(ui_url, viewport={"width": 1280, "height": 1100}).new_page()
    tab.set_default_timeout(scaled(30_000))
    tab.goto(f"{ui_url}/Admin")
    expect(tab.locator("[data-testid=stDataFrame]")).to_be_visible()
    login_field = tab.get_by_label("Login", exact=True)
    open_expander(tab, "Add an account", login_field)
    login_field.fill(login)
    tab.get_by_label("Name", exact=True).fill("New Person")
    tab.get_by_label("Password", exact=True).fill("a-good-long-password")
    tab.get_by_role("button", name="Add", exact=True).click()
    expect(tab.get_by_text(f"Added {login}.")).to_be_visible()
    shot(tab, "admin-page")
    sign_in_with_the_form(fresh, ui_url, login, "a-good-long-password")
    expect(sidebar(fresh).get_by_text("Signed in as")).to_contain_text("New Person")


def test_a_person_allowed_one_model_gets_a_clear_error_for_another(
    signed_in_context: Callable[..., BrowserContext], ui_url: str
) -> None:
    tab = signed_in_context(ui_url, RESTRICTED, viewport={"width": 1280, "height": 900}).new_page()
    tab.set_default_timeout(scaled(30_000))
    tab.goto(ui_url)
    chat_input = tab.locator("[data-testid=stChatInput] textarea")
    chat_input.fill("Hello there")
    chat_input.press("Enter")
    expect(tab.get_by_text(f"may not use model '{OTHER_MODEL}'").first).to_be_visible(timeout=scaled(60_000))
    shot(tab, "model-not-allowed")


def test_no_page_or_socket_message_carries_the_master_key_or_the_service_key(
    signed_in_context: Callable[..., BrowserContext], ui_url: str, ui_service_key: str
) -> None:
    seen: list[bytes] = []
    responses: list[Response] = []
    context = signed_in_context(ui_url)
    context.on("response", lambda response: responses.append(response))
    tab = context.new_page()

    def record(socket: WebSocket) -> None:
        socket.on("framereceived", lambda frame: seen.append(frame if isinstance(frame, bytes) else frame.encode()))

    tab.on("websocket", record)
    for path in ("", "/Usage", "/Admin"):
        tab.goto(f"{ui_url}{path}")
        expect(sidebar(tab).get_by_text("Signed in as")).to_be_visible()
        tab.wait_for_load_state("networkidle")
        for response in responses:  # read before the next page replaces them
            seen.append(str(response.all_headers()).encode())
            try:
                seen.append(response.body())
            except Error:  # a redirect has no body
                continue
        responses.clear()
    assert len(seen) > 10
    for secret in (MASTER_KEY, ui_service_key):
        assert not any(secret.encode() in body for body in seen)
