"""Accounts, API keys and each person's proxy key, on real PostgreSQL (genailabs and the hub's litellm)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from accounts_support import FAST_HASHER, PASSWORD, POLICY, unique_login

from genailabs_accounts.errors import (
    AccountNotFound,
    AccountsUnavailable,
    BadAccountInput,
    LastAdmin,
    LoginTaken,
    NotSignedIn,
)
from genailabs_accounts.store import AccountStore
from procs import PostgresInstance


def _hub_keys(hub_db: Any, user_id: str) -> list[dict[str, Any]]:
    return hub_db.execute(
        "SELECT * FROM hub_keys WHERE metadata->>'user_id' = %s ORDER BY created_at", (user_id,)
    ).fetchall()


def test_creating_an_account_makes_its_proxy_key(store: AccountStore, hub_db: Any) -> None:
    login = unique_login()
    made = store.create_account(login.upper(), PASSWORD, name="Grace", models=["m1"], rpm=5, max_budget=2.5)
    assert (made.login, made.name, made.role, made.disabled) == (login, "Grace", "user", False)
    uuid.UUID(made.id)
    [key] = _hub_keys(hub_db, made.id)
    assert key["alias"] == f"user:{login}" and key["revoked_at"] is None
    assert (key["models"], key["rpm_limit"], key["max_budget"]) == (["m1"], 5, 2.5)
    assert key["metadata"] == {"user_id": made.id, "login": login}


@pytest.mark.parametrize(
    ("login", "password", "message"),
    [
        ("", PASSWORD, "login"),
        ("has space", PASSWORD, "login"),
        ("x" * 65, PASSWORD, "login"),
        ("ok-login", "short", "at least 8"),
        ("ok-login", "p" * 1025, "at most 1024"),
    ],
)
def test_bad_logins_and_passwords_are_refused(store: AccountStore, login: str, password: str, message: str) -> None:
    with pytest.raises(BadAccountInput, match=message) as error:
        store.create_account(login, password)
    assert error.value.status_code == 422


def test_bad_roles_and_limits_are_refused(store: AccountStore) -> None:
    for kwargs in ({"role": "root"}, {"rpm": 0}, {"max_budget": -1.0}, {"models": ["m"] * 1 + ["x" * 201]}):
        with pytest.raises(BadAccountInput):
            store.create_account(unique_login(), PASSWORD, **kwargs)  # type: ignore[arg-type]


def test_logins_are_unique_whatever_their_case(store: AccountStore) -> None:
    login = unique_login()
    store.create_account(login, PASSWORD)
    with pytest.raises(LoginTaken) as taken:
        store.create_account(login.upper(), PASSWORD)
    assert taken.value.status_code == 409


def test_ensure_first_admin_generates_a_password_once(store: AccountStore) -> None:
    assert store.first_admin() is None
    admin, password = store.ensure_first_admin(unique_login("admin"))
    assert admin.role == "admin" and password is not None and len(password) >= 16
    assert store.sign_in(admin.login, password).account.id == admin.id
    again, none = store.ensure_first_admin(unique_login("admin"))
    assert (again.id, none) == (admin.id, None)
    first = store.first_admin()
    assert first is not None and first.id == admin.id


def test_ensure_first_admin_takes_a_given_password(store: AccountStore) -> None:
    admin, password = store.ensure_first_admin(unique_login("admin"), PASSWORD)
    assert password is None
    assert store.sign_in(admin.login, PASSWORD).account.role == "admin"


def test_api_keys_are_shown_once_resolve_and_stop_when_revoked(store: AccountStore) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    key, public = store.create_api_key(made.id, "my script")
    assert key.startswith("glk_") and public.prefix == key[: len(public.prefix)] and len(public.prefix) < 12
    assert store.resolve(key).id == made.id
    [listed] = store.list_api_keys(made.id)
    assert listed.id == public.id and listed.last_used_at is not None and listed.revoked_at is None
    revoked = store.revoke_api_key(made.id, public.id)
    assert revoked.revoked_at is not None
    with pytest.raises(NotSignedIn, match="revoked"):
        store.resolve(key)


def test_someone_elses_api_key_cannot_be_revoked(store: AccountStore) -> None:
    owner = store.create_account(unique_login(), PASSWORD)
    other = store.create_account(unique_login(), PASSWORD)
    key, public = store.create_api_key(owner.id, "mine")
    for key_id in (public.id, str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(AccountNotFound) as error:
            store.revoke_api_key(other.id, key_id)
        assert error.value.status_code == 404
    assert store.resolve(key).id == owner.id
    with pytest.raises(BadAccountInput):
        store.create_api_key(owner.id, "")


def test_disabling_ends_sessions_and_keys_and_revokes_the_proxy_key(store: AccountStore, hub_db: Any) -> None:
    store.ensure_first_admin(unique_login("admin"), PASSWORD)
    made = store.create_account(unique_login(), PASSWORD, models=["m1", "m2"], rpm=7, max_budget=3.0)
    token = store.sign_in(made.login, PASSWORD).token
    key, _ = store.create_api_key(made.id, "script")
    assert store.set_disabled(made.id, True).disabled
    for credential in (token, key):
        with pytest.raises(NotSignedIn):
            store.resolve(credential)
    [revoked] = _hub_keys(hub_db, made.id)
    assert revoked["revoked_at"] is not None
    assert not store.set_disabled(made.id, False).disabled
    keys = _hub_keys(hub_db, made.id)
    assert [row["revoked_at"] is None for row in keys] == [False, True]
    assert (keys[1]["models"], keys[1]["rpm_limit"], keys[1]["max_budget"]) == (["m1", "m2"], 7, 3.0)
    with pytest.raises(NotSignedIn):
        store.resolve(token)  # enabling does not bring old sign-ins back
    assert store.resolve(key).id == made.id  # API keys were not revoked, only refused while disabled


def test_reset_password_ends_sessions(store: AccountStore) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    token = store.sign_in(made.login, PASSWORD).token
    store.reset_password(made.id, "a brand new password")
    with pytest.raises(NotSignedIn):
        store.resolve(token)
    assert store.sign_in(made.login, "a brand new password").account.id == made.id


def test_the_last_active_admin_can_be_neither_demoted_nor_disabled(store: AccountStore) -> None:
    admin, _ = store.ensure_first_admin(unique_login("admin"), PASSWORD)
    for change in (lambda: store.set_role(admin.id, "user"), lambda: store.set_disabled(admin.id, True)):
        with pytest.raises(LastAdmin) as error:
            change()
        assert error.value.status_code == 409
    user = store.create_account(unique_login(), PASSWORD)
    assert store.set_role(user.id, "admin").role == "admin"
    assert store.set_role(admin.id, "user").role == "user"
    with pytest.raises(LastAdmin):
        store.set_disabled(user.id, True)
    first = store.first_admin()
    assert first is not None and first.id == user.id


def test_limits_are_set_on_the_proxy_key_and_listed(store: AccountStore, hub_db: Any) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    listing = store.set_limits(made.id, ["m1"], 10, 1.5)
    assert (listing.models, listing.rpm, listing.max_budget, listing.spend) == (["m1"], 10, 1.5, 0.0)
    [key] = _hub_keys(hub_db, made.id)
    assert (key["models"], key["rpm_limit"], key["max_budget"]) == (["m1"], 10, 1.5)
    [listed] = [row for row in store.list_accounts() if row.id == made.id]
    assert (listed.models, listed.rpm, listed.max_budget) == (["m1"], 10, 1.5)
    store.set_limits(made.id, [], None, None)
    [listed] = [row for row in store.list_accounts() if row.id == made.id]
    assert (listed.models, listed.rpm, listed.max_budget) == ([], None, None)


def test_usage_comes_per_person_from_the_proxy_request_log(store: AccountStore, hub_db: Any) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    [key] = _hub_keys(hub_db, made.id)
    now = datetime.now(UTC)
    hub_db.execute(
        """INSERT INTO hub_request_log (request_id, started_at, ended_at, key_hash, key_alias, model_group,
               prompt_tokens, completion_tokens, cost, latency_ms, status)
           VALUES (%s, %s, %s, %s, %s, 'm1', 10, 5, 0.25, 100, 'success')""",
        (uuid.uuid4().hex, now, now, key["key_hash"], key["alias"]),
    )
    [line] = store.usage(now - timedelta(minutes=1), made.id)
    assert (line.user_id, line.login, line.model, line.requests, line.prompt_tokens, line.cost) == (
        made.id, made.login, "m1", 1, 10, 0.25,
    )  # fmt: skip
    assert any(line.user_id == made.id for line in store.usage(now - timedelta(minutes=1)))
    [listed] = [row for row in store.list_accounts() if row.id == made.id]
    assert listed.spend == 0.25


def test_passwords_are_argon2id_and_no_credential_is_stored_in_plain(store: AccountStore, db: Any, hub_db: Any) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    token = store.sign_in(made.login, PASSWORD).token
    key, _ = store.create_api_key(made.id, "script")
    _, one_time = store.ensure_first_admin(unique_login("admin"))
    assert one_time is not None
    hashes = [row["password_hash"] for row in db.execute("SELECT password_hash FROM accounts").fetchall()]
    assert len(hashes) == 2 and all(value.startswith("$argon2id$") for value in hashes)
    tables = [row["tablename"] for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    dump = "".join(
        str(row["r"]) for table in tables for row in db.execute(f"SELECT row_to_json(t)::text AS r FROM {table} t")
    )
    dump += "".join(str(row["r"]) for row in hub_db.execute("SELECT row_to_json(k)::text AS r FROM hub_keys k"))
    for secret in (PASSWORD, one_time, token, key, token[4:], key[4:]):
        assert secret not in dump


def test_an_unreachable_database_is_accounts_unavailable(postgres: PostgresInstance) -> None:
    closed = f"postgresql://litellm:litellm@127.0.0.1:1/genailabs_{uuid.uuid4().hex[:6]}"
    store = AccountStore(closed, postgres.url("litellm"))
    try:
        with pytest.raises(AccountsUnavailable) as error:
            store.resolve("gls_whatever")
        assert error.value.status_code == 503 and "litellm@" not in str(error.value)
    finally:
        store.close()


def test_an_unreachable_hub_leaves_no_account_behind(accounts_url: str, db: Any) -> None:
    store = AccountStore(accounts_url, "postgresql://litellm:litellm@127.0.0.1:1/litellm", POLICY, FAST_HASHER)
    try:
        with pytest.raises(AccountsUnavailable, match="key store"):
            store.create_account(unique_login(), PASSWORD)
    finally:
        store.close()
    assert db.execute("SELECT count(*) AS n FROM accounts").fetchone() == {"n": 0}
