"""Agent mode in a real browser (headless Debian chromium): each step of a run shows up as an expander.

Real processes, as in test_documents_in_browser (whose start-up helpers this module reuses): PostgreSQL, two
runtimes, the LiteLLM proxy, the agent host and the Streamlit UI in agent-host mode; the model is the real
smollm2:135m.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from test_documents_in_browser import SCREENSHOTS, start_host, start_ui

from procs import PostgresInstance, scaled

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ui_url(proxy: str, postgres: PostgresInstance, runtimes: tuple[str, str]) -> Iterator[str]:
    host, host_url, database_url = start_host(proxy, postgres)
    try:
        ui, url = start_ui(host_url, database_url, proxy, runtimes)
    except Exception:
        host.stop()
        raise
    yield url
    ui.stop()
    host.stop()


@pytest.fixture(scope="module")
def page(browser: Browser, ui_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    tab = context.new_page()
    tab.set_default_timeout(scaled(30_000))
    tab.goto(ui_url)
    yield tab
    context.close()


def sidebar(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("[data-testid=stSidebar]")


def test_an_agent_turn_shows_its_steps_then_the_answer(page: Page) -> None:
    sidebar(page).get_by_text("Agent mode").click()
    agent_picker = sidebar(page).locator("[data-testid=stSelectbox]").filter(has_text="Agent")
    expect(agent_picker).to_be_visible()
    agent_picker.click()
    page.get_by_role("option", name="math", exact=True).click()
    chat = page.locator("[data-testid=stChatInput] textarea")
    chat.fill("What is 12 times 7?")
    chat.press("Enter")
    step = page.get_by_text(re.compile(r"^Step 1: calculator"))
    expect(step).to_be_visible(timeout=scaled(120_000))
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible(timeout=scaled(120_000))
    expect(page.get_by_text(re.compile(r"\d+ steps? · \d+ tool calls?"))).to_be_visible()
    page.get_by_text(re.compile(r"^Step 1: calculator")).click()
    expect(page.get_by_text("Tool call", exact=True)).to_be_visible()
    expect(page.locator("[data-testid=stJson]").first).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Result of calculator"))).to_be_visible()
    page.wait_for_timeout(600)  # the expander's opening animation
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "agent-steps.png"))
