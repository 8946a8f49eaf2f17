"""Documents and chat with sources in a real browser (headless Debian chromium), the UI in agent-host mode.

Real processes: PostgreSQL, two runtimes, the LiteLLM proxy, the agent host (real Chroma, real embedding model)
and the Streamlit UI; the browser is signed in as an admin of the host's database (the UI signs people in there
and sends the agent host their sign-in token).
"""

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_actions import open_expander, settled
from playwright.sync_api import BrowserContext, Page, expect

from genailabs_accounts.models import Account
from procs import (
    MASTER_KEY,
    SCREENSHOTS,
    ManagedProcess,
    PostgresInstance,
    hub_url_of,
    scaled,
    start_agent_host,
)
from procs import start_ui as start_stack_ui

HOST_KEY = "sk-e2e-documents-host-key"
PENGUINS_MD = """# Emperor penguins

Emperor penguins breed in the middle of the Antarctic winter. The male keeps the single egg warm on his feet
for about two months, without eating, while the female feeds at sea.
"""
VOLCANO_TXT = (
    "Mount Etna on Sicily is one of the most active volcanoes in the world. Its eruptions send lava flows "
    "down the eastern slopes into the Valle del Bove, a wide valley that protects the villages below."
)
COLLECTION = "zoo-notes"
# Logins are unique across the test databases: each person's proxy key sits in the one shared hub database.
ADMIN = "e2e-docs-admin"
pytestmark = pytest.mark.timeout(300)


def start_host(proxy: str, postgres: PostgresInstance, prefix: str = "e2e_docs") -> tuple[ManagedProcess, str, str]:
    """An agent host on its own database (the accounts the UI signs people in with live there too)."""
    database_url = postgres.new_database(prefix)
    process, url = start_agent_host(proxy, database_url, MASTER_KEY, api_key=HOST_KEY)
    return process, url, database_url


def start_ui(
    host_url: str, database_url: str, proxy: str, runtimes: tuple[str, str], service_key: str
) -> tuple[ManagedProcess, str]:
    """The UI in agent-host mode, as `make up` runs it (its proxy key a service key, used for the status panel)."""
    return start_stack_ui(
        LITELLM_BASE_URL=f"{proxy}/v1",
        LITELLM_API_KEY=service_key,
        AGENT_HOST_URL=host_url,
        DATABASE_URL=database_url,
        HUB_DATABASE_URL=hub_url_of(database_url),
        RUNTIME_URLS=",".join(runtimes),
    )


@pytest.fixture(scope="module")
def stack(
    proxy: str, postgres: PostgresInstance, runtimes: tuple[str, str], ui_service_key: str
) -> Iterator[tuple[str, str, str]]:
    """(UI URL, host URL, the host's database URL)."""
    host, host_url, database_url = start_host(proxy, postgres)
    try:
        ui, url = start_ui(host_url, database_url, proxy, runtimes, ui_service_key)
    except Exception:
        host.stop()
        raise
    yield url, host_url, database_url
    ui.stop()
    host.stop()


@pytest.fixture(scope="module")
def ui_url(stack: tuple[str, str, str]) -> str:
    return stack[0]


@pytest.fixture(scope="module")
def page(
    signed_in_context: Callable[..., BrowserContext], ui_account: Callable[..., Account], stack: tuple[str, str, str]
) -> Iterator[Page]:
    ui_account(database_url=stack[2], login=ADMIN)
    tab = signed_in_context(stack[0], ADMIN, viewport={"width": 1280, "height": 1300}).new_page()
    tab.set_default_timeout(scaled(30_000))
    yield tab


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_upload_two_files_and_watch_them_indexed(page: Page, ui_url: str, tmp_path: Path) -> None:
    page.goto(f"{ui_url}/Documents")
    settled(page)
    name = page.get_by_label("Name", exact=True)
    open_expander(page, "New collection", name)
    name.fill(COLLECTION)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_text(f"Collection {COLLECTION} created.")).to_be_visible()
    (tmp_path / "penguins.md").write_text(PENGUINS_MD)
    (tmp_path / "etna.txt").write_text(VOLCANO_TXT)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(
        [str(tmp_path / "penguins.md"), str(tmp_path / "etna.txt")]
    )
    page.get_by_role("button", name="Upload and index").click()
    done = page.get_by_text(re.compile(r"Done: 2 of 2 files indexed, \d+ chunks?"))
    expect(done).to_be_visible(timeout=scaled(120_000))
    expect(page.locator("[data-testid=stProgress]").first).to_be_visible()
    for filename in ("penguins.md", "etna.txt"):
        expect(page.get_by_text(re.compile(rf"{re.escape(filename)} · indexed · \d+ chunks?"))).to_be_visible()
    expect(page.get_by_role("button", name="Re-index")).to_have_count(2)
    page.get_by_role("heading", name="Documents").first.scroll_into_view_if_needed()
    shot(page, "documents")


def test_retrieval_testing_shows_the_right_chunk(page: Page) -> None:
    page.get_by_label("Question").fill("Which volcano sends lava into the Valle del Bove?")
    page.locator("[data-testid=stFormSubmitButton] button", has_text="Search").click()
    expect(page.get_by_text(re.compile(r"#1 · score [\d.]+ · etna\.txt"))).to_be_visible()


def test_a_question_with_the_collection_selected_shows_its_source(page: Page, ui_url: str) -> None:
    page.goto(ui_url)
    picker = page.locator("[data-testid=stMultiSelect]")
    expect(picker).to_be_visible()  # the page has run through: a click now is not undone by its first run
    max_tokens = page.get_by_label("Max tokens")
    open_expander(page, "Settings for this chat", max_tokens)
    max_tokens.fill("32")
    max_tokens.press("Enter")
    page.get_by_text("Settings for this chat").click()
    picker.click()
    page.get_by_role("option", name=COLLECTION).click()
    page.keyboard.press("Escape")
    chat = page.locator("[data-testid=stChatInput] textarea")
    chat.fill("How long does the male emperor penguin keep the egg warm?")
    chat.press("Enter")
    source = page.get_by_text(re.compile(r"\[1\] penguins\.md"))
    expect(source).to_be_visible(timeout=scaled(120_000))
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible(timeout=scaled(60_000))
    page.get_by_text(re.compile(r"\[1\] penguins\.md")).click()
    expect(page.get_by_text("keeps the single egg warm").first).to_be_visible()
    page.wait_for_timeout(600)  # the expander's opening animation
    shot(page, "chat-sources")


def test_sources_are_still_there_after_a_reload(page: Page) -> None:
    page.reload()
    conversation = page.locator("[data-testid=stSidebar] [class*='st-key-open-'] button").first
    expect(conversation).to_be_visible()
    conversation.click()
    expect(page.get_by_text(re.compile(r"\[1\] penguins\.md"))).to_be_visible()
