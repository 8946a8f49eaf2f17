"""Steps the browser tests share."""

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from procs import scaled


def open_expander(page: Page, title: str, inside: Locator, tries: int = 5) -> None:
    """Clicks the expander `title` until `inside` shows: a click that lands while Streamlit is still drawing
    the page's first run is undone by that run (the expander is drawn again, closed)."""
    for _ in range(tries):
        if inside.is_visible():
            return
        page.get_by_text(title).click()
        try:
            inside.wait_for(state="visible", timeout=scaled(3_000))
        except PlaywrightTimeout:
            continue
    inside.wait_for(state="visible")


def settled(page: Page) -> None:
    """Waits for the page's script run to end: a click before that may be undone by the run (a busy machine
    draws the first run slowly), and the last run's elements stay on screen beside the new until then."""
    expect(page.locator("[data-testid=stStatusWidget]")).to_have_count(0)
    expect(page.locator("[data-stale=true]")).to_have_count(0)
