"""AccountStore: people, their sign-ins, API keys and proxy keys; the one entry point the services use."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from argon2 import PasswordHasher

from genailabs_accounts import credentials, rules, throttle
from genailabs_accounts.db import Database
from genailabs_accounts.errors import AccountDisabled, AccountNotFound, BadAccountInput, InvalidCredentials, LoginTaken
from genailabs_accounts.hubkeys import HubKeys
from genailabs_accounts.models import Account, AccountListing, ApiKeyPublic, PersonUsage, SignIn
from genailabs_accounts.passwords import Passwords, generate_password
from genailabs_accounts.rows import (
    ACCOUNT_COLUMNS,
    account_row,
    adopt_orphans,
    check_other_admin,
    first_admin_row,
    parse_uuid,
    to_account,
    to_listing,
)

# Serialises the changes that count admins (create, demote, disable), so two of them cannot both pass the check.
ADMINS_LOCK_ID = 0x474C_4144
MAX_API_KEYS = 50
MAX_SESSIONS = 50


@dataclass(frozen=True)
class AccountPolicy:
    session_idle_minutes: int = 120
    login_max_failures: int = 10
    login_lock_minutes: int = 15
    login_free_failures: int = 3


class AccountStore:
    """Thread-safe; every method is sync (the host calls it from a worker thread)."""

    def __init__(
        self,
        genailabs_url: str,
        hub_url: str,
        policy: AccountPolicy = AccountPolicy(),  # frozen, so one shared default is safe
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.policy = policy
        self._db = Database(genailabs_url)
        self._hub = HubKeys(hub_url)
        self._passwords = Passwords(hasher)
        self._throttle = throttle.ThrottlePolicy(
            policy.login_free_failures, policy.login_max_failures, policy.login_lock_minutes
        )

    def close(self) -> None:
        self._db.close()

    # --- accounts -------------------------------------------------------------------------------------------

    def create_account(
        self,
        login: str,
        password: str,
        name: str = "",
        role: str = "user",
        models: Iterable[str] = (),
        rpm: int | None = None,
        max_budget: float | None = None,
    ) -> Account:
        """A new account and its proxy key; the first admin ever made adopts every row that has no owner."""
        login = rules.normalise_login(login)
        checked_role = rules.check_role(role)
        limits = rules.check_limits(models, rpm, max_budget)
        password_hash = self._passwords.hash(password)
        account_id = str(uuid.uuid4())
        with self._db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADMINS_LOCK_ID,))
            first_admin = checked_role == "admin" and first_admin_row(conn, active_only=False) is None
            try:
                row = conn.execute(
                    f"""INSERT INTO accounts (id, login, name, role, password_hash) VALUES (%s, %s, %s, %s, %s)
                        RETURNING {ACCOUNT_COLUMNS}""",
                    (account_id, login, rules.check_name(name), checked_role, password_hash),
                ).fetchone()
            except psycopg.errors.UniqueViolation:
                raise LoginTaken(login) from None
            assert row is not None
            if first_admin:
                adopt_orphans(conn, account_id)
            # Inside the transaction: when the hub cannot make the key, the account is not made either.
            self._hub.create(account_id, login, *limits)
        return to_account(row)

    def ensure_first_admin(self, login: str = "admin", password: str | None = None) -> tuple[Account, str | None]:
        """The first admin, made now if none exists; the one-time password when this call generated it."""
        existing = self.first_admin()
        if existing is not None:
            with self._db.connection() as conn:
                adopt_orphans(conn, existing.id)  # rows written by services older than accounts
            return existing, None
        generated = None if password else generate_password()
        try:
            made = self.create_account(login, password or generated or "", role="admin")
        except LoginTaken:
            # Another process (a second `make up`, the CLI) made it between our check and our insert.
            raced = self.first_admin()
            if raced is None:
                raise
            return raced, None
        return made, generated

    def first_admin(self) -> Account | None:
        """The oldest active admin: who the operator keys act as."""
        with self._db.connection() as conn:
            row = first_admin_row(conn, active_only=True)
        return None if row is None else to_account(row)

    def get(self, account_id: str) -> Account:
        with self._db.connection() as conn:
            return to_account(account_row(conn, account_id))

    def by_login(self, login: str) -> Account:
        """The account with this login (any case); AccountNotFound otherwise."""
        key = login.strip().lower()[: rules.MAX_LOGIN + 1]
        with self._db.connection() as conn:
            row = conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE login = %s", (key,)).fetchone()
        if row is None:
            raise AccountNotFound(f"no account with login '{key}'")
        return to_account(row)

    def list_accounts(self) -> list[AccountListing]:
        with self._db.connection() as conn:
            rows = conn.execute(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at").fetchall()
        keys = self._hub.by_person()
        return [to_listing(to_account(row), keys.get(row["id"])) for row in rows]

    def set_disabled(self, account_id: str, disabled: bool) -> Account:
        """Disabling ends the sign-ins and revokes the proxy key; enabling makes a new key with the same limits."""
        with self._db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADMINS_LOCK_ID,))
            row = account_row(conn, account_id, lock=True)
            if disabled and row["role"] == "admin" and not row["disabled"]:
                check_other_admin(conn, row["id"])
            conn.execute("UPDATE accounts SET disabled = %s WHERE id = %s", (disabled, row["id"]))
            if disabled:
                credentials.end_all_sessions(conn, row["id"])
                self._hub.revoke(row["id"])
            elif self._hub.active(row["id"]) is None:
                last = self._hub.latest(row["id"])
                record = last.record if last is not None else None
                self._hub.create(
                    row["id"],
                    row["login"],
                    record.models if record else [],
                    record.rpm_limit if record else None,
                    record.max_budget if record else None,
                )
            return to_account(account_row(conn, row["id"]))

    def reset_password(self, account_id: str, password: str) -> Account:
        """A new password; every sign-in of the account ends."""
        password_hash = self._passwords.hash(password)
        with self._db.connection() as conn, conn.transaction():
            row = account_row(conn, account_id, lock=True)
            conn.execute("UPDATE accounts SET password_hash = %s WHERE id = %s", (password_hash, row["id"]))
            credentials.end_all_sessions(conn, row["id"])
            return to_account(row)

    def set_role(self, account_id: str, role: str) -> Account:
        checked = rules.check_role(role)
        with self._db.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADMINS_LOCK_ID,))
            row = account_row(conn, account_id, lock=True)
            if row["role"] == "admin" and checked != "admin" and not row["disabled"]:
                check_other_admin(conn, row["id"])
            conn.execute("UPDATE accounts SET role = %s WHERE id = %s", (checked, row["id"]))
            return to_account(account_row(conn, row["id"]))

    def set_limits(
        self, account_id: str, models: Iterable[str], rpm: int | None, max_budget: float | None
    ) -> AccountListing:
        """The person's allowed models (empty: all), rpm and budget, set on their proxy key."""
        limits = rules.check_limits(models, rpm, max_budget)
        account = self.get(account_id)
        if account.disabled:
            raise BadAccountInput("this account is disabled: enable it before changing its limits")
        listing = self._hub.active(account.id)
        if listing is None:  # its key was revoked by hand: a new one carries the limits
            self._hub.create(account.id, account.login, *limits)
        else:
            self._hub.update_limits(listing.record.key_hash, *limits)
        return to_listing(account, self._hub.active(account.id))

    # --- sign-in and credentials ------------------------------------------------------------------------------

    def sign_in(self, login: str, password: str) -> SignIn:
        """A sign-in token for the right login and password; the same error whether or not the login exists."""
        try:
            key = rules.normalise_login(login)
        except BadAccountInput:
            raise InvalidCredentials() from None  # cannot be anyone's login; no throttle row for junk
        with self._db.connection() as conn:
            throttle.claim_attempt(conn, key, self._throttle)
            row = conn.execute(
                f"SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE login = %s", (key,)
            ).fetchone()
        if not self._passwords.verify(row["password_hash"] if row else None, password) or row is None:
            raise InvalidCredentials()
        with self._db.connection() as conn:
            throttle.reset(conn, key)
            if row["disabled"]:
                raise AccountDisabled()
            if self._passwords.needs_rehash(row["password_hash"]):
                conn.execute(
                    "UPDATE accounts SET password_hash = %s WHERE id = %s", (self._passwords.hash(password), row["id"])
                )
            conn.execute("UPDATE accounts SET last_seen_at = now() WHERE id = %s", (row["id"],))
            token, expires = credentials.start_session(conn, row["id"], self.policy.session_idle_minutes, MAX_SESSIONS)
        return SignIn(token=token, account=to_account(row), idle_expires_at=expires)

    def resolve(self, credential: str) -> Account:
        """The account behind a `gls_` sign-in token or `glk_` API key; NotSignedIn saying why otherwise."""
        with self._db.connection() as conn:
            return to_account(credentials.resolve(conn, credential, self.policy.session_idle_minutes))

    def sign_out(self, token: str) -> None:
        with self._db.connection() as conn:
            credentials.end_session(conn, token)

    def create_api_key(self, account_id: str, name: str) -> tuple[str, ApiKeyPublic]:
        """A personal API key, returned once; only its hash is kept."""
        checked = rules.check_key_name(name)
        with self._db.connection() as conn, conn.transaction():
            row = account_row(conn, account_id, lock=True)
            active = conn.execute(
                "SELECT count(*) AS n FROM account_api_keys WHERE account_id = %s AND revoked_at IS NULL", (row["id"],)
            ).fetchone()
            if active is not None and active["n"] >= MAX_API_KEYS:
                raise BadAccountInput(f"at most {MAX_API_KEYS} active API keys per person: revoke one first")
            key, public = credentials.new_api_key(conn, row["id"], checked)
        return key, ApiKeyPublic.model_validate(public)

    def list_api_keys(self, account_id: str) -> list[ApiKeyPublic]:
        with self._db.connection() as conn:
            rows = conn.execute(
                """SELECT id::text AS id, name, key_prefix AS prefix, created_at, last_used_at, revoked_at
                   FROM account_api_keys WHERE account_id = %s ORDER BY created_at""",
                (parse_uuid(account_id),),
            ).fetchall()
        return [ApiKeyPublic.model_validate(row) for row in rows]

    def revoke_api_key(self, account_id: str, key_id: str) -> ApiKeyPublic:
        """Revokes one of the person's keys; someone else's key id is AccountNotFound, as an unknown one is."""
        with self._db.connection() as conn:
            row = conn.execute(
                """UPDATE account_api_keys SET revoked_at = COALESCE(revoked_at, now())
                   WHERE id = %s AND account_id = %s
                   RETURNING id::text AS id, name, key_prefix AS prefix, created_at, last_used_at, revoked_at""",
                (parse_uuid(key_id, "API key"), parse_uuid(account_id)),
            ).fetchone()
        if row is None:
            raise AccountNotFound(f"no API key {key_id}")
        return ApiKeyPublic.model_validate(row)

    def usage(self, since: datetime, account_id: str | None = None) -> list[PersonUsage]:
        """Requests, tokens and cost per person and model from the proxy's request log."""
        lines = self._hub.usage(since, account_id)
        return [PersonUsage.model_validate(line, from_attributes=True) for line in lines]
