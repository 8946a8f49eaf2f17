"""The browser every end-to-end module drives (Debian's Chromium, headless, one per module), and signed-in
browser contexts: the UI lets nobody past /signin, so every test's context signs in first.

A module's UI needs its proxy key to be a service key (`ui_service_key`) and an account in the UI's `genailabs`
database (`ui_account`, the admin `procs.UI_ADMIN_LOGIN` by default); `signed_in_context(ui_url)` is then a new
browser context whose cookie jar holds that person's `genailabs_session` cookie, set by the UI's own /signin.
"""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from genailabs_accounts.models import Account
from procs import UI_ADMIN_LOGIN, UI_PASSWORD, PostgresInstance, ensure_account, make_service_key, scaled

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


@pytest.fixture(scope="session")
def ui_service_key(postgres: PostgresInstance) -> str:
    """A hub service key in the session's hub database: the UI's LITELLM_API_KEY (never the master key)."""
    return make_service_key(postgres.url("litellm"), "e2e-ui")


@pytest.fixture(scope="session")
def ui_account(postgres: PostgresInstance) -> Callable[..., Account]:
    """`ui_account(database_url=genailabs, login=UI_ADMIN_LOGIN, role="admin", password=UI_PASSWORD, **limits)`:
    that account, made (with its proxy key in the session's hub database) or reset to these values."""

    def make(database_url: str | None = None, login: str = UI_ADMIN_LOGIN, **options: Any) -> Account:
        url = database_url or postgres.url("genailabs")
        return ensure_account(url, postgres.url("litellm"), login, **options)

    return make


def sign_in_context(context: BrowserContext, ui_url: str, login: str, password: str) -> None:
    """Posts the UI's sign-in form from the context's own request client, so the cookie lands in its jar."""
    reply = context.request.post(
        f"{ui_url}/signin",
        form={"login": login, "password": password},
        headers={"Origin": ui_url},
        max_redirects=0,
        timeout=scaled(30_000),
    )
    if reply.status != 303:
        raise RuntimeError(f"sign-in as {login} failed: {reply.status} {reply.text()[:200]}")


@pytest.fixture(scope="module")
def signed_in_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """`signed_in_context(ui_url, login=UI_ADMIN_LOGIN, password=UI_PASSWORD, **new_context_options)`: a new
    browser context already signed in (closed with the module)."""
    contexts: list[BrowserContext] = []

    def open_context(
        ui_url: str, login: str = UI_ADMIN_LOGIN, password: str = UI_PASSWORD, **options: Any
    ) -> BrowserContext:
        context = browser.new_context(**options)
        contexts.append(context)
        sign_in_context(context, ui_url, login, password)
        return context

    yield open_context
    for context in contexts:
        context.close()
