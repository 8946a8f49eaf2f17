"""The gate, the Admin page and the Usage page, driven by AppTest on the real PostgreSQL and hub key store."""

import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from fake_model_server import FakeModelServer
from streamlit.testing.v1 import AppTest

from chat_ui.people import SignedIn
from devstack.config import REPO_ROOT
from genailabs_accounts.errors import AccountDisabled
from genailabs_accounts.store import AccountStore
from hub.keystore import KeyStore, connect
from procs import UI_PASSWORD, PostgresInstance, ensure_account, scaled

PAGES = REPO_ROOT / "streamlit_service" / "pages"
MAIN = REPO_ROOT / "streamlit_service" / "main.py"


def open_as(path: str, person: SignedIn | None) -> AppTest:
    app = AppTest.from_file(str(PAGES / path if path != "main.py" else MAIN), default_timeout=scaled(30))
    if person is not None:
        app.session_state["person"] = person
    return app.run()


def page_text(app: AppTest) -> str:
    parts = [str(e.value) for e in (*app.markdown, *app.caption, *app.error, *app.warning, *app.info, *app.success)]
    return "\n".join(parts)


@pytest.fixture
def user(ui_env: FakeModelServer, postgres: PostgresInstance, account_store: AccountStore) -> SignedIn:
    ensure_account(postgres.url("genailabs"), postgres.url("litellm"), "pages-user", role="user")
    signed = account_store.sign_in("pages-user", UI_PASSWORD)
    return SignedIn(account=signed.account, token=signed.token)


def test_a_page_without_a_signed_in_person_shows_nothing_but_the_way_to_sign_in(ui_env: FakeModelServer) -> None:
    for path in ("main.py", "1_Usage.py", "3_Admin.py"):
        app = open_as(path, None)
        assert not app.exception, path
        assert "You are not signed in" in app.warning[0].value, path
        assert "/signin" in app.markdown[0].value and len(app.main) == 2, path  # the warning and the link


def test_an_ended_session_stops_the_page(person: SignedIn, account_store: AccountStore) -> None:
    account_store.sign_out(person.token)
    app = open_as("1_Usage.py", person)
    assert "Your session ended" in app.warning[0].value
    assert "person" not in app.session_state


def test_a_non_admin_gets_admins_only_and_nothing_else(user: SignedIn) -> None:
    app = open_as("3_Admin.py", user)
    assert not app.exception
    assert [e.value for e in app.error] == ["Admins only."]
    assert not app.dataframe and not app.text_input and not app.button


def test_admin_adds_an_account_with_a_generated_password_shown_once(
    person: SignedIn, account_store: AccountStore
) -> None:
    login = f"added-{uuid.uuid4().hex[:6]}"
    app = open_as("3_Admin.py", person)
    app.text_input(key="add_login").set_value(login)
    app.text_input(key="add_name").set_value("Added Person")
    next(b for b in app.button if b.label == "Add").click()
    app.run()
    assert not app.exception and not app.error
    assert f"Added {login}." in page_text(app)
    password = app.code[0].value
    assert account_store.sign_in(login, password).account.name == "Added Person"
    app.run()  # shown once: the next run has no password on it
    assert not app.code and password not in page_text(app)


def test_admin_disables_an_account_and_sets_its_limits(person: SignedIn, account_store: AccountStore) -> None:
    login = f"limited-{uuid.uuid4().hex[:6]}"
    account = account_store.create_account(login, UI_PASSWORD)
    app = open_as("3_Admin.py", person)
    app.selectbox(key="admin_account").set_value(login).run()
    app.number_input(key=f"{account.id}_rpm").set_value(7)
    app.number_input(key=f"{account.id}_budget").set_value(2.5)
    next(b for b in app.button if b.label == "Save limits").click()
    app.run()
    assert f"Limits of {login} saved." in page_text(app)
    listing = next(a for a in account_store.list_accounts() if a.login == login)
    assert (listing.rpm, listing.max_budget) == (7, 2.5)
    app.button(key=f"toggle_{account.id}").click()
    app.run()
    assert f"{login} is disabled." in page_text(app)
    with pytest.raises(AccountDisabled):
        account_store.sign_in(login, UI_PASSWORD)


def test_the_last_admin_cannot_demote_themself(person: SignedIn, account_store: AccountStore) -> None:
    admins = [a for a in account_store.list_accounts() if a.is_admin and not a.disabled and a.id != person.account.id]
    for other in admins:  # leave the fixture's admin as the only active one
        account_store.set_role(other.id, "user")
    app = open_as("3_Admin.py", person)
    app.selectbox(key="admin_account").set_value(person.account.login).run()
    app.selectbox(key=f"role_{person.account.id}_value").set_value("user")
    next(b for b in app.button if b.label == "Set role").click()
    app.run()
    assert "last active admin" in app.error[0].value
    assert account_store.get(person.account.id).is_admin


def _log_request(hub_url: str, account_id: str, model: str, tokens: int) -> None:
    with connect(hub_url, 5) as conn:
        listing = KeyStore(conn).for_user(account_id)
    assert listing is not None
    now = datetime.now(UTC)
    with psycopg.connect(hub_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO hub_request_log (request_id, started_at, ended_at, key_hash, key_alias, model_group, "
            "prompt_tokens, completion_tokens, cost, latency_ms, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'success')",
            (f"ui-pages-{uuid.uuid4().hex}", now, now, listing.record.key_hash, listing.record.alias, model,
             tokens, tokens, 0.001, 50.0),
        )  # fmt: skip


def test_usage_shows_a_person_their_own_and_an_admin_everyones(
    person: SignedIn, user: SignedIn, postgres: PostgresInstance
) -> None:
    hub_url = postgres.url("litellm")
    _log_request(hub_url, user.account.id, "model-of-the-user", 11)
    _log_request(hub_url, person.account.id, "model-of-the-admin", 13)
    mine = open_as("1_Usage.py", user)
    assert not mine.exception
    table = mine.dataframe[0].value
    assert set(table["model"]) == {"model-of-the-user"} and "login" not in table.columns
    everyone = open_as("1_Usage.py", person)
    assert not everyone.exception
    per_person = everyone.dataframe[0].value
    assert {"pages-user", person.account.login} <= set(per_person.index)
    everyone.toggle(key="usage_everyone").set_value(False).run()
    own = set(everyone.dataframe[0].value["model"])  # the admin's own: other tests chat as this admin too
    assert "model-of-the-admin" in own and "model-of-the-user" not in own
