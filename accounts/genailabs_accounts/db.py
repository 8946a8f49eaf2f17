"""The genailabs connection pool of AccountStore: opened on first use, migrated once, outages as one error."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from genailabs_accounts.errors import AccountsUnavailable
from genailabs_accounts.migrations import migrate

STATEMENT_TIMEOUT_MS = 15_000


def describe_url(url: str) -> str:
    """host:port/db of a URL: its password never reaches a message."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"


class Database:
    """A small pool on `genailabs`; the first connection applies the migrations."""

    def __init__(self, url: str, max_size: int = 4, timeout: float = 5.0) -> None:
        self._url = url
        self._timeout = timeout
        self._lock = threading.Lock()
        self._migrated = False
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, int(timeout)),
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
            },
        )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            self._open()
            with self._pool.connection() as conn:
                yield conn  # type: ignore[misc]  # the pool's kwargs set dict rows
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise AccountsUnavailable(self._unreachable(exc)) from exc

    def _open(self) -> None:
        if self._migrated:
            return
        with self._lock:
            if self._migrated:
                return
            # A direct first connection: a server that is down says why at once, where the pool would only time out.
            with psycopg.connect(self._url, autocommit=True, connect_timeout=max(1, int(self._timeout))) as conn:
                migrate(conn)
            self._pool.open(wait=False)
            self._migrated = True

    def _unreachable(self, exc: Exception) -> str:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(exc).__name__
        return f"the accounts database at {describe_url(self._url)} is unreachable: {reason}"

    def close(self) -> None:
        self._pool.close()
