"""Sign-in: tokens, the same error for unknown logins, the per-login throttle and lockout, idle expiry."""

from typing import Any

import pytest
from accounts_support import PASSWORD, POLICY, unique_login
from argon2 import PasswordHasher

from genailabs_accounts.errors import (
    AccountDisabled,
    InvalidCredentials,
    NotSignedIn,
    TooManyAttempts,
)
from genailabs_accounts.passwords import MAX_PASSWORD
from genailabs_accounts.store import AccountStore


def test_sign_in_gives_a_token_that_resolves_to_the_account_until_sign_out(store: AccountStore) -> None:
    made = store.create_account(unique_login(), PASSWORD, name="Ada")
    signed = store.sign_in(made.login.upper(), PASSWORD)  # logins are case-insensitive
    assert signed.token.startswith("gls_") and len(signed.token) == 4 + 43
    assert signed.account.id == made.id
    assert store.resolve(signed.token).login == made.login
    store.sign_out(signed.token)
    with pytest.raises(NotSignedIn, match="sign in again"):
        store.resolve(signed.token)


def test_a_wrong_password_and_an_unknown_login_get_the_same_error(store: AccountStore) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    with pytest.raises(InvalidCredentials) as wrong:
        store.sign_in(made.login, "not the password")
    with pytest.raises(InvalidCredentials) as unknown:
        store.sign_in(unique_login("nobody"), PASSWORD)
    with pytest.raises(InvalidCredentials) as junk:
        store.sign_in("no such login!" * 50, PASSWORD)
    assert str(wrong.value) == str(unknown.value) == str(junk.value) == "wrong login or password"
    assert wrong.value.status_code == 401 and wrong.value.error_type == unknown.value.error_type


def test_an_overlong_password_is_refused_without_hashing(store: AccountStore) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    with pytest.raises(InvalidCredentials):
        store.sign_in(made.login, "x" * (MAX_PASSWORD + 1))


def _fail(store: AccountStore, login: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            store.sign_in(login, "wrong password")


def _age_failures(db: Any, login: str, seconds: int) -> None:
    """Moves the login's last failure back in time instead of sleeping."""
    db.execute(
        "UPDATE login_attempts SET last_failure_at = last_failure_at - %s * interval '1 second' WHERE login = %s",
        (seconds, login),
    )


@pytest.mark.parametrize("exists", [True, False], ids=["known login", "unknown login"])
def test_failures_are_slowed_then_locked_the_same_for_known_and_unknown_logins(
    store: AccountStore, db: Any, exists: bool
) -> None:
    login = unique_login()
    if exists:
        store.create_account(login, PASSWORD)
    _fail(store, login, POLICY.login_free_failures)  # free: no wait between them
    with pytest.raises(TooManyAttempts) as slowed:
        store.sign_in(login, PASSWORD)  # refused before the password is even checked
    assert slowed.value.status_code == 429 and slowed.value.retry_after == 1
    _age_failures(db, login, 2)
    _fail(store, login, 1)
    with pytest.raises(TooManyAttempts) as slower:
        store.sign_in(login, PASSWORD)
    assert slower.value.retry_after == 2  # the wait doubles with each failure past the free ones
    for _ in range(POLICY.login_max_failures - POLICY.login_free_failures - 1):
        _age_failures(db, login, 61)
        _fail(store, login, 1)
    _age_failures(db, login, 61)
    with pytest.raises(TooManyAttempts, match="locked") as locked:
        store.sign_in(login, PASSWORD)
    assert 60 < locked.value.retry_after <= POLICY.login_lock_minutes * 60
    db.execute("UPDATE login_attempts SET locked_until = now() - interval '1 second' WHERE login = %s", (login,))
    if exists:
        assert store.sign_in(login, PASSWORD).account.login == login
        assert db.execute("SELECT count(*) AS n FROM login_attempts WHERE login = %s", (login,)).fetchone() == {"n": 0}
    else:
        _fail(store, login, 1)  # after the lock, one more failure locks it again at once
        with pytest.raises(TooManyAttempts, match="locked"):
            store.sign_in(login, PASSWORD)


def test_a_success_forgets_the_failures(store: AccountStore) -> None:
    login = unique_login()
    store.create_account(login, PASSWORD)
    _fail(store, login, POLICY.login_free_failures - 1)
    store.sign_in(login, PASSWORD)
    _fail(store, login, POLICY.login_free_failures)  # all free again


def test_a_disabled_account_is_told_so_only_with_the_right_password(store: AccountStore) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    store.set_disabled(made.id, True)
    with pytest.raises(InvalidCredentials):
        store.sign_in(made.login, "wrong password")
    with pytest.raises(AccountDisabled) as disabled:
        store.sign_in(made.login, PASSWORD)
    assert disabled.value.status_code == 401


def test_an_idle_session_expires(store: AccountStore, db: Any) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    signed = store.sign_in(made.login, PASSWORD)
    assert (signed.idle_expires_at - made.created_at).total_seconds() >= POLICY.session_idle_minutes * 60 - 5
    db.execute(
        "UPDATE account_sessions SET last_seen_at = now() - %s * interval '1 minute' WHERE account_id = %s",
        (POLICY.session_idle_minutes - 1, made.id),
    )
    assert store.resolve(signed.token).id == made.id  # still inside the window: use refreshes it
    db.execute(
        "UPDATE account_sessions SET last_seen_at = now() - %s * interval '1 minute' WHERE account_id = %s",
        (POLICY.session_idle_minutes + 1, made.id),
    )
    with pytest.raises(NotSignedIn, match="expired"):
        store.resolve(signed.token)
    with pytest.raises(NotSignedIn):
        store.resolve(signed.token)  # ended, not only expired


def test_use_refreshes_the_idle_window(store: AccountStore, db: Any) -> None:
    made = store.create_account(unique_login(), PASSWORD)
    signed = store.sign_in(made.login, PASSWORD)
    db.execute("UPDATE account_sessions SET last_seen_at = now() - interval '10 minutes'")
    store.resolve(signed.token)
    row = db.execute("SELECT now() - last_seen_at < interval '1 minute' AS fresh FROM account_sessions").fetchone()
    assert row == {"fresh": True}


@pytest.mark.parametrize("credential", ["", "sk-master", "gls_", "gls_" + "a" * 43, "glk_" + "b" * 43, "x" * 10_000])
def test_unknown_credentials_are_not_signed_in(store: AccountStore, credential: str) -> None:
    with pytest.raises(NotSignedIn) as error:
        store.resolve(credential)
    assert error.value.status_code == 401


def test_passwords_are_rehashed_when_the_parameters_change(accounts_url: str, hub_url: str, db: Any) -> None:
    weak = AccountStore(accounts_url, hub_url, POLICY, hasher=PasswordHasher(time_cost=1, memory_cost=1024))
    made = weak.create_account(unique_login(), PASSWORD)
    weak.close()
    before = db.execute("SELECT password_hash FROM accounts WHERE id = %s", (made.id,)).fetchone()["password_hash"]
    default = AccountStore(accounts_url, hub_url, POLICY)  # argon2-cffi's defaults (RFC 9106 low-memory)
    try:
        default.sign_in(made.login, PASSWORD)
        after = db.execute("SELECT password_hash FROM accounts WHERE id = %s", (made.id,)).fetchone()["password_hash"]
        assert before.startswith("$argon2id$") and after.startswith("$argon2id$")
        assert "m=1024" in before and "m=65536" in after
        assert default.sign_in(made.login, PASSWORD).account.id == made.id
    finally:
        default.close()
