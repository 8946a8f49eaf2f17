"""People for the host's ownership tests: signed-in accounts (with tokens) and account rows for in-process stores."""

import uuid
from datetime import UTC, datetime
from typing import Any

from genailabs_accounts.migrations import amigrate
from genailabs_accounts.models import Account
from genailabs_accounts.store import AccountStore

PASSWORD = "a-long-enough-password"


def signed_in(database_url: str, prefix: str = "person", role: str = "user") -> tuple[Account, str]:
    """A new account on that genailabs database (with its proxy key in the hub's) and a sign-in token."""
    login = f"{prefix}.{uuid.uuid4().hex[:8]}"
    hub_url = database_url.rsplit("/", 1)[0] + "/litellm"  # the hub's database on the same server
    store = AccountStore(database_url, hub_url)
    try:
        store.create_account(login, PASSWORD, role=role)
        signin = store.sign_in(login, PASSWORD)
    finally:
        store.close()
    return signin.account, signin.token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def stored_person(pool: Any, prefix: str = "person", role: str = "user") -> Account:
    """An account row only (no proxy key, no password that works): what in-process stores need as an owner."""
    return await store_account(pool, somebody(role, prefix))


async def store_account(pool: Any, account: Account) -> Account:
    """Writes the account's row (the schema migrated first, as the host's stores do)."""
    async with pool.connection() as conn:
        await amigrate(conn)
        await conn.execute(
            "INSERT INTO accounts (id, login, role, password_hash) VALUES (%s, %s, %s, 'not-a-hash') "
            "ON CONFLICT (id) DO NOTHING",
            (account.id, account.login, account.role),
        )
    return account


def somebody(role: str = "user", prefix: str = "nobody") -> Account:
    """A person for in-process runs that store nothing (no session, no notes): no account row needed."""
    login = f"{prefix}.{uuid.uuid4().hex[:8]}"
    return Account(id=str(uuid.uuid4()), login=login, name="", role=role, disabled=False, created_at=datetime.now(UTC))  # type: ignore[arg-type]
