"""The SQL on `accounts` that several AccountStore methods share, and rows turned into models."""

import uuid
from typing import Any

import psycopg

from genailabs_accounts.errors import AccountNotFound, LastAdmin
from genailabs_accounts.models import Account, AccountListing
from hub.keystore import KeyListing

ACCOUNT_COLUMNS = "id::text AS id, login, name, role, disabled, created_at, last_seen_at"


def to_account(row: dict[str, Any]) -> Account:
    return Account.model_validate({name: row[name] for name in Account.model_fields})


def first_admin_row(conn: psycopg.Connection[dict[str, Any]], active_only: bool) -> dict[str, Any] | None:
    """The oldest (active) admin's row."""
    where = "role = 'admin' AND NOT disabled" if active_only else "role = 'admin'"
    sql = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {where} ORDER BY created_at, id LIMIT 1"
    return conn.execute(sql).fetchone()


def parse_uuid(value: str, what: str = "account") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise AccountNotFound(f"no {what} {str(value)[:64]}") from None


def account_row(conn: psycopg.Connection[dict[str, Any]], account_id: str, lock: bool = False) -> dict[str, Any]:
    suffix = " FOR UPDATE" if lock else ""
    row = conn.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = %s{suffix}", (parse_uuid(account_id),)
    ).fetchone()
    if row is None:
        raise AccountNotFound(f"no account {account_id}")
    return row


def check_other_admin(conn: psycopg.Connection[dict[str, Any]], account_id: str) -> None:
    other = conn.execute(
        "SELECT 1 FROM accounts WHERE role = 'admin' AND NOT disabled AND id <> %s LIMIT 1", (account_id,)
    ).fetchone()
    if other is None:
        raise LastAdmin()


def adopt_orphans(conn: psycopg.Connection[dict[str, Any]], account_id: str) -> None:
    conn.execute("UPDATE agent_sessions SET owner_id = %s WHERE owner_id IS NULL", (account_id,))
    conn.execute("UPDATE rag_collections SET owner_id = %s WHERE owner_id IS NULL", (account_id,))
    conn.execute("UPDATE ui_conversations SET owner_id = %s WHERE owner_id IS NULL", (account_id,))


def to_listing(account: Account, key: KeyListing | None) -> AccountListing:
    record = key.record if key is not None else None
    return AccountListing(
        **account.model_dump(),
        models=list(record.models) if record else [],
        rpm=record.rpm_limit if record else None,
        max_budget=record.max_budget if record else None,
        spend=key.spend if key is not None else 0.0,
    )
