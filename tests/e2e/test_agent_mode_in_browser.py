"""Agent-host mode in a real browser (headless Debian chromium): agent steps, one history, and two people.

Real processes, as in test_documents_in_browser (whose start-up helpers this module reuses): PostgreSQL, two
runtimes, the LiteLLM proxy, the agent host and the Streamlit UI; the model is the real smollm2:135m. Two people
of the host's database sign in, each in a browser context of their own.
"""

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from browser_actions import open_expander
from playwright.sync_api import BrowserContext, Locator, Page, expect
from test_documents_in_browser import SCREENSHOTS, start_host, start_ui

from genailabs_accounts.models import Account
from genailabs_accounts.store import AccountStore
from procs import UI_PASSWORD, PostgresInstance, hub_url_of, scaled

pytestmark = pytest.mark.timeout(420)
ADMIN = "e2e-agents-admin"
USER = "e2e-agents-user"
PENGUINS = "# Emperor penguins\n\nThe male keeps the single egg warm on his feet for about two months.\n"


@pytest.fixture(scope="module")
def stack(
    proxy: str, postgres: PostgresInstance, runtimes: tuple[str, str], ui_service_key: str
) -> Iterator[tuple[str, str, str]]:
    """(UI URL, host URL, the host's database URL)."""
    host, host_url, database_url = start_host(proxy, postgres, "e2e_agents")
    try:
        ui, url = start_ui(host_url, database_url, proxy, runtimes, ui_service_key)
    except Exception:
        host.stop()
        raise
    yield url, host_url, database_url
    ui.stop()
    host.stop()


@pytest.fixture(scope="module")
def people(ui_account: Callable[..., Account], stack: tuple[str, str, str]) -> dict[str, str]:
    """Both people on the host's database, each with a sign-in token of their own for reading the host's API."""
    tokens = {}
    store = AccountStore(stack[2], hub_url_of(stack[2]))
    try:
        for login, role in ((ADMIN, "admin"), (USER, "user")):
            ui_account(database_url=stack[2], login=login, role=role)
            tokens[login] = store.sign_in(login, UI_PASSWORD).token
    finally:
        store.close()
    return tokens


def tab_of(context: BrowserContext, ui_url: str) -> Page:
    """A tab of a new signed-in context: a Streamlit session of its own (agent mode off, a new chat)."""
    tab = context.new_page()
    tab.set_default_timeout(scaled(30_000))
    tab.goto(ui_url)
    expect(chat_input(tab)).to_be_visible()
    return tab


@pytest.fixture
def page(signed_in_context: Callable[..., BrowserContext], stack: tuple[str, str, str], people: dict[str, str]) -> Page:
    return tab_of(signed_in_context(stack[0], ADMIN, viewport={"width": 1280, "height": 1100}), stack[0])


def host_api(stack: tuple[str, str, str], token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{stack[1]}{path}", headers=headers, timeout=scaled(120), **kwargs)


def sidebar(page: Page) -> Locator:
    return page.locator("[data-testid=stSidebar]")


def chat_input(page: Page) -> Locator:
    return page.locator("[data-testid=stChatInput] textarea")


def send(page: Page, text: str) -> None:
    chat_input(page).fill(text)
    chat_input(page).press("Enter")


def session_of(page: Page) -> str:
    """The open conversation: the host's session id in the page's ?c=."""
    match = re.search(r"[?&]c=([0-9a-f-]{36})", page.url)
    assert match, page.url
    return match.group(1)


def on_screen(page: Page) -> list[tuple[str, str]]:
    """The conversation as the page shows it: each message's role and the raw text of its copy box."""
    shown = []
    for message in page.locator("[data-testid=stChatMessage]").all():
        role = "user" if message.locator("[data-testid=stChatMessageAvatarUser]").count() else "assistant"
        shown.append((role, (message.locator("[data-testid=stCode] code").last.text_content() or "").rstrip("\n")))
    return shown


def stored(stack: tuple[str, str, str], token: str, session_id: str) -> list[dict[str, Any]]:
    """The host's one copy of the conversation, as its owner reads it."""
    response = host_api(stack, token, "GET", f"/sessions/{session_id}/messages")
    assert response.status_code == 200, response.text
    return list(response.json())


def settled(page: Page, stack: tuple[str, str, str], token: str, session_id: str, check: Callable[..., bool]) -> None:
    """Waits until the host's copy passes `check` and the page shows exactly that copy (or the wait runs out)."""
    deadline = time.monotonic() + scaled(180)
    while time.monotonic() < deadline:
        messages = stored(stack, token, session_id)
        quiet = check(messages) and not page.get_by_role("button", name="Stop").count()
        if quiet and on_screen(page) == [(m["role"], m["content"].rstrip("\n")) for m in messages]:
            return
        page.wait_for_timeout(500)


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_an_agent_turn_shows_its_steps_then_the_answer(page: Page) -> None:
    sidebar(page).get_by_text("Agent mode").click()
    agent_picker = sidebar(page).locator("[data-testid=stSelectbox]").filter(has_text="Agent")
    expect(agent_picker).to_be_visible()
    agent_picker.click()
    page.get_by_role("option", name="math", exact=True).click()
    send(page, "What is 12 times 7?")
    step = page.get_by_text(re.compile(r"^Step 1: calculator"))
    expect(step).to_be_visible(timeout=scaled(120_000))
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible(timeout=scaled(120_000))
    expect(page.get_by_text(re.compile(r"\d+ steps? · \d+ tool calls?"))).to_be_visible()
    page.get_by_text(re.compile(r"^Step 1: calculator")).click()
    expect(page.get_by_text("Tool call", exact=True)).to_be_visible()
    expect(page.locator("[data-testid=stJson]").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Result of calculator"))).to_be_visible()
    page.wait_for_timeout(600)  # the expander's opening animation
    shot(page, "agent-steps")


def test_an_edit_and_a_regenerate_leave_the_hosts_history_exactly_as_on_screen(
    page: Page, stack: tuple[str, str, str], people: dict[str, str]
) -> None:
    token = people[ADMIN]
    expect(page.get_by_text("Pick a model and ask something")).to_be_visible()
    max_tokens = page.get_by_label("Max tokens")
    open_expander(page, "Settings for this chat", max_tokens)
    max_tokens.fill("24")
    max_tokens.press("Enter")
    page.get_by_text("Settings for this chat").click()
    send(page, "Name one colour.")
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible(timeout=scaled(120_000))
    session_id = session_of(page)
    settled(page, stack, token, session_id, lambda m: len(m) == 2)
    first = stored(stack, token, session_id)
    assert [m["role"] for m in first] == ["user", "assistant"]
    assert on_screen(page) == [(m["role"], m["content"].rstrip("\n")) for m in first]

    page.get_by_role("button", name="Edit last message").click()
    page.get_by_label("Your last message").fill("Name one fruit.")
    page.get_by_role("button", name="Send edited").click()
    settled(page, stack, token, session_id, lambda m: len(m) == 2 and m[1]["id"] != first[1]["id"])
    edited = stored(stack, token, session_id)
    assert (edited[0]["id"], edited[0]["content"]) == (first[0]["id"], "Name one fruit.")
    assert edited[1]["role"] == "assistant" and edited[1]["id"] > first[1]["id"]
    assert on_screen(page) == [(m["role"], m["content"].rstrip("\n")) for m in edited]

    expect(page.get_by_role("button", name="Regenerate")).to_be_visible(timeout=scaled(120_000))
    page.get_by_role("button", name="Regenerate").click()
    settled(page, stack, token, session_id, lambda m: len(m) == 2 and m[1]["id"] != edited[1]["id"])
    regenerated = stored(stack, token, session_id)
    assert [m["id"] for m in regenerated][:1] == [edited[0]["id"]] and regenerated[1]["id"] > edited[1]["id"]
    assert on_screen(page) == [(m["role"], m["content"].rstrip("\n")) for m in regenerated]
    page.reload()
    expect(chat_input(page)).to_be_visible()
    expect(page.locator("[data-testid=stChatMessage]")).to_have_count(2)
    assert on_screen(page) == [(m["role"], m["content"].rstrip("\n")) for m in regenerated]
    shot(page, "one-history")


def test_two_people_each_see_only_their_own_chats_and_collections(
    page: Page,
    signed_in_context: Callable[..., BrowserContext],
    stack: tuple[str, str, str],
    people: dict[str, str],
) -> None:
    admin_token, user_token = people[ADMIN], people[USER]
    shared, private = f"shared-{uuid.uuid4().hex[:6]}", f"private-{uuid.uuid4().hex[:6]}"
    for name in (shared, private):
        assert host_api(stack, admin_token, "POST", "/rag/collections", json={"name": name}).status_code == 201
    files = [("files", ("penguins.md", PENGUINS.encode(), "text/markdown"))]
    upload = host_api(stack, admin_token, "POST", f"/rag/collections/{shared}/documents", params={"wait": "true"},
                      files=files)  # fmt: skip
    assert upload.status_code == 200, upload.text
    assert host_api(stack, admin_token, "PATCH", f"/rag/collections/{shared}", json={"shared": True}).status_code == 200
    admin_chats = [s["title"] for s in host_api(stack, admin_token, "GET", "/sessions").json()]
    assert admin_chats, "the earlier tests left the admin some chats"

    theirs = tab_of(signed_in_context(stack[0], USER, viewport={"width": 1280, "height": 1100}), stack[0])
    expect(sidebar(theirs).get_by_text("No chats yet.")).to_be_visible()
    for title in admin_chats:
        expect(sidebar(theirs).get_by_role("button", name=title, exact=True)).to_have_count(0)
    send(theirs, "Say hello.")
    expect(theirs.get_by_role("button", name="Regenerate")).to_be_visible(timeout=scaled(120_000))
    their_session = session_of(theirs)
    assert [s["id"] for s in host_api(stack, user_token, "GET", "/sessions").json()] == [their_session]
    assert host_api(stack, admin_token, "GET", f"/sessions/{their_session}").status_code == 404
    page.goto(f"{stack[0]}/?c={their_session}")  # the admin types the other person's chat into the address bar
    expect(chat_input(page)).to_be_visible()
    expect(page.get_by_text("Say hello.")).to_have_count(0)

    theirs.goto(f"{stack[0]}/Documents")
    table = theirs.locator("[data-testid=stDataFrame]")
    expect(table).to_be_visible()
    picker = theirs.locator("[data-testid=stSelectbox]").filter(has_text="Collection")
    picker.click()
    expect(theirs.get_by_role("option", name=private)).to_have_count(0)
    theirs.get_by_role("option", name=shared).click()
    expect(theirs.get_by_text(f"{shared} is shared by {ADMIN}")).to_be_visible()
    expect(theirs.get_by_role("button", name="Upload and index")).to_have_count(0)
    expect(theirs.get_by_role("button", name="Delete collection")).to_have_count(0)
    expect(theirs.get_by_role("button", name="Re-index")).to_have_count(0)
    expect(theirs.get_by_text("penguins.md").first).to_be_visible()  # readable: its documents are listed
    shot(theirs, "shared-read-only")
    refused = host_api(stack, user_token, "DELETE", f"/rag/collections/{shared}")
    assert refused.status_code in (403, 404) and shared in [
        c["name"] for c in host_api(stack, admin_token, "GET", "/rag/collections").json()
    ]
