"""The chat UI in a real browser (headless Debian chromium) against a real proxy, runtimes and PostgreSQL, in
proxy-only mode: the UI's own tables hold the signed-in person's chats."""

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_actions import open_expander
from playwright.sync_api import BrowserContext, Page, expect

from genailabs_accounts.models import Account
from procs import SCREENSHOTS, ManagedProcess, PostgresInstance, make_service_key, scaled, start_proxy, start_ui

MASTER_KEY = "sk-e2e-master-0123456789"  # this module starts its own proxy with it
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def own_proxy(postgres: PostgresInstance, runtimes: tuple[str, str]) -> Iterator[tuple[ManagedProcess, str]]:
    """A proxy this module may stop and start again."""
    process, url = start_proxy(MASTER_KEY, postgres.url("litellm"), *runtimes)
    yield process, url
    process.stop()


@pytest.fixture(scope="module")
def ui_url(
    own_proxy: tuple[ManagedProcess, str],
    postgres: PostgresInstance,
    runtimes: tuple[str, str],
    ui_account: Callable[..., Account],
) -> Iterator[str]:
    ui_account()  # the admin the browser signs in as
    process, url = start_ui(
        LITELLM_BASE_URL=f"{own_proxy[1]}/v1",
        LITELLM_API_KEY=make_service_key(postgres.url("litellm"), "e2e-chat-ui"),
        DATABASE_URL=postgres.url("genailabs"),
        HUB_DATABASE_URL=postgres.url("litellm"),
        RUNTIME_URLS=",".join(runtimes),
        STATUS_INTERVAL="2",
    )
    yield url
    process.stop()


@pytest.fixture(scope="module")
def page(signed_in_context: Callable[..., BrowserContext], ui_url: str) -> Page:
    context = signed_in_context(ui_url, viewport={"width": 1280, "height": 860}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(scaled(30_000))
    tab.goto(ui_url)
    return tab


def chat_input(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("[data-testid=stChatInput] textarea")


def sidebar(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("[data-testid=stSidebar]")


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def send(page: Page, text: str) -> None:
    chat_input(page).fill(text)
    chat_input(page).press("Enter")


def test_pick_the_model_and_set_a_short_answer(page: Page) -> None:
    expect(chat_input(page)).to_be_visible()
    page.locator("[data-testid=stSelectbox]").first.click()
    page.get_by_role("option", name="smollm2:135m", exact=True).click()
    max_tokens = page.get_by_label("Max tokens")
    open_expander(page, "Settings for this chat", max_tokens)
    max_tokens.fill("24")
    max_tokens.press("Enter")
    page.get_by_text("Settings for this chat").click()
    expect(sidebar(page).get_by_text("proxy")).to_be_visible()


def test_answer_streams_in_more_than_one_step(page: Page) -> None:
    send(page, "Write one sentence about the sea.")
    answer = page.locator("[data-testid=stChatMessage]").nth(1)
    seen: list[str] = []
    deadline = time.monotonic() + scaled(90)
    while time.monotonic() < deadline:
        if answer.count():
            text = answer.inner_text(timeout=scaled(1000))
            if text and (not seen or seen[-1] != text):
                seen.append(text)
        if page.get_by_role("button", name="Regenerate").count():
            break
        time.sleep(0.02)
    growing = [text for text in seen if "waiting for the model" not in text]
    assert len(growing) >= 2, seen
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible()
    page.get_by_text("facts · copy").click()
    expect(page.get_by_text(re.compile(r"model smollm2:135m · tokens in \d+ / out \d+"))).to_be_visible()
    shot(page, "chat")


def test_conversation_is_in_the_sidebar_after_a_reload(page: Page) -> None:
    page.reload()
    expect(chat_input(page)).to_be_visible()
    conversations = sidebar(page).locator("[class*='st-key-open-'] button")
    expect(conversations.first).to_be_visible()
    conversations.first.click()
    expect(page.get_by_text("Write one sentence about the sea.").first).to_be_visible()


def test_rename_and_export_the_conversation(page: Page, tmp_path: Path) -> None:
    sidebar(page).get_by_text("This chat: rename").click()
    title = sidebar(page).get_by_label("Title")
    title.fill("Sea sentence")
    title.press("Enter")
    expect(sidebar(page).get_by_role("button", name="Sea sentence")).to_be_visible()
    exported = tmp_path / "chat.md"
    # The rename's rerun redraws the sidebar list before the export button further down: a click in between
    # downloads the file as the previous run made it, so wait for the export to show the new title.
    deadline = time.monotonic() + scaled(10)
    while True:
        with page.expect_download() as download:
            sidebar(page).get_by_role("button", name="Markdown").click()
        download.value.save_as(exported)
        if exported.read_text().startswith("# Sea sentence") or time.monotonic() > deadline:
            break
        page.wait_for_timeout(300)
    assert exported.read_text().startswith("# Sea sentence")
    assert "Write one sentence about the sea." in exported.read_text()
    shot(page, "sidebar")


def test_delete_asks_first_then_removes_the_conversation(page: Page) -> None:
    sidebar(page).get_by_role("button", name="Delete chat").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("This cannot be undone")).to_be_visible()
    shot(page, "delete-confirm")
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(sidebar(page).get_by_role("button", name="Sea sentence")).to_have_count(0)


def test_proxy_down_shows_red_and_a_clear_error_then_recovers_without_reload(
    page: Page, own_proxy: tuple[ManagedProcess, str]
) -> None:
    process, _ = own_proxy
    process.stop()
    expect(sidebar(page).get_by_text("no answer from")).to_be_visible(timeout=scaled(60_000))
    send(page, "Are you there?")
    expect(page.get_by_text("Cannot reach the proxy")).to_be_visible(timeout=scaled(60_000))
    expect(page.get_by_role("button", name="Resend")).to_be_visible()
    shot(page, "proxy-down")
    process.start()
    expect(sidebar(page).get_by_text("no answer from")).to_have_count(0, timeout=scaled(90_000))
    page.get_by_role("button", name="Resend").click()
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible(timeout=scaled(90_000))
    expect(page.get_by_text("Cannot reach the proxy")).to_have_count(0)
