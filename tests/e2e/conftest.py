"""The browser every end-to-end module drives: Debian's Chromium, headless, one per module."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from procs import scaled

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


# Playwright's own 5 s for `expect` is what a slower machine missed (the chat input not drawn in time):
# every assertion waits as long as the pages' default, stretched by TEST_TIME_SCALE.
expect.set_options(timeout=scaled(30_000))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield instance
        instance.close()
