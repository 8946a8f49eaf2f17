"""Accounts on the session's real PostgreSQL: a fresh genailabs database per test, the shared litellm one."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from accounts_support import FAST_HASHER, POLICY
from psycopg.rows import dict_row

from genailabs_accounts.store import AccountStore
from procs import PostgresInstance


@pytest.fixture
def accounts_url(postgres: PostgresInstance) -> str:
    return postgres.new_database("accounts")


@pytest.fixture
def hub_url(postgres: PostgresInstance) -> str:
    return postgres.url("litellm")


@pytest.fixture
def store(accounts_url: str, hub_url: str) -> Iterator[AccountStore]:
    accounts = AccountStore(accounts_url, hub_url, POLICY, hasher=FAST_HASHER)
    yield accounts
    accounts.close()


@pytest.fixture
def db(accounts_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A direct connection to the test's genailabs database, to look at (or age) rows."""
    with psycopg.connect(accounts_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def hub_db(hub_url: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    with psycopg.connect(hub_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn
