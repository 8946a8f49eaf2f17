"""The hub's migrations: once each under a lock, an upgrade keeps every row and carries its spend over, and the
shared spend counts each answered request once, whether its pending cost or its log row arrives first."""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from hub_support import usage_row
from psycopg.types.json import Jsonb

from hub.db import RECORD_PENDING, SPEND_OF_HOLDER, UPSERT_USAGE, usage_params
from hub.response_cache import cache_control, is_deterministic, namespace_of
from hub.schema import HUB_MIGRATIONS
from procs import PostgresInstance

VERSIONS = [migration.version for migration in HUB_MIGRATIONS.migrations]


@pytest.fixture
def hub_url(postgres: PostgresInstance) -> Iterator[str]:
    yield postgres.new_database("hubmig")


def _spend(conn: psycopg.Connection[Any], key_hash: str) -> float:
    row = conn.execute(SPEND_OF_HOLDER, (key_hash,)).fetchone()
    return float(row[0]) if row else 0.0


def _add_key(conn: psycopg.Connection[Any], key_hash: str, revoked: bool = False, **metadata: str) -> None:
    conn.execute(
        "INSERT INTO hub_keys (key_hash, key_prefix, alias, metadata, revoked_at) VALUES (%s, %s, %s, %s, %s)",
        (key_hash, key_hash[:8], f"alias-{key_hash}", Jsonb(metadata), datetime.now(UTC) if revoked else None),
    )


def test_migrate_applies_each_hub_migration_once(hub_url: str) -> None:
    with psycopg.connect(hub_url, autocommit=True) as conn:
        assert HUB_MIGRATIONS.migrate(conn) == VERSIONS
        assert HUB_MIGRATIONS.migrate(conn) == []
        ledger = conn.execute("SELECT version, name FROM hub_migrations ORDER BY version").fetchall()
    assert ledger == [(1, "baseline"), (2, "shared_spend")]


def test_proxies_starting_together_all_migrate_without_error(hub_url: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        try:
            with psycopg.connect(hub_url, autocommit=True) as conn:
                start.wait()
                results.append(HUB_MIGRATIONS.migrate(conn))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(results, key=len) == [[], [], [], VERSIONS]


def test_an_upgrade_keeps_the_rows_and_a_person_keeps_the_spend_of_every_key_they_had(hub_url: str) -> None:
    with psycopg.connect(hub_url, autocommit=True) as conn:
        conn.execute(HUB_MIGRATIONS.migrations[0].sql)  # a database as the hub left it before migrations
        _add_key(conn, "old-key", revoked=True, user_id="u-1")  # an account disabled, then enabled again
        _add_key(conn, "new-key", user_id="u-1")
        _add_key(conn, "team-key")
        for request, (key, cost) in enumerate([("old-key", 1.5), ("new-key", 2.0), ("team-key", 0.25)]):
            conn.execute(
                "INSERT INTO hub_request_log (request_id, started_at, ended_at, key_hash, cost, latency_ms, status) "
                "VALUES (%s, now(), now(), %s, %s, 1, 'success')",
                (f"pre-{request}", key, cost),
            )
        assert HUB_MIGRATIONS.migrate(conn) == VERSIONS  # the baseline is a no-op over the old tables
        assert conn.execute("SELECT count(*) FROM hub_request_log").fetchone() == (3,)
        assert _spend(conn, "new-key") == pytest.approx(3.5)
        assert _spend(conn, "team-key") == pytest.approx(0.25)


def test_an_answered_request_counts_once_whether_its_pending_cost_or_its_log_row_comes_first(hub_url: str) -> None:
    with psycopg.connect(hub_url, autocommit=True) as conn:
        HUB_MIGRATIONS.migrate(conn)
        _add_key(conn, "k1", user_id="u-2")

        def pending(request_id: str, cost: float) -> None:
            conn.execute(RECORD_PENDING, {"request_id": request_id, "key_hash": "k1", "cost": cost})

        def logged(request_id: str, cost: float) -> None:
            conn.execute(UPSERT_USAGE, usage_params(usage_row(request_id, key_hash="k1", cost=cost)))

        pending("a", 1.0)
        assert _spend(conn, "k1") == pytest.approx(1.0)  # counted before its row exists
        logged("a", 1.0)
        assert _spend(conn, "k1") == pytest.approx(1.0)  # the row replaced it
        logged("b", 2.0)
        pending("b", 2.0)  # late: the row already counted it
        assert _spend(conn, "k1") == pytest.approx(3.0)
        logged("b", 2.0)  # the writer retrying a batch
        assert _spend(conn, "k1") == pytest.approx(3.0)
        assert conn.execute("SELECT count(*) FROM hub_spend_pending").fetchone() == (0,)


def test_only_deterministic_requests_are_opted_into_the_cache_and_per_key() -> None:
    assert is_deterministic({"temperature": 0}) and is_deterministic({"temperature": 0.7, "seed": 3})
    assert not is_deterministic({}) and not is_deterministic({"temperature": 0.2})
    assert not is_deterministic({"temperature": False}) and not is_deterministic({"seed": True})
    assert cache_control({"temperature": 0.5}, "h", 600) is None
    control = cache_control({"temperature": 0, "cache": {"no-cache": True, "namespace": "theirs"}}, "h", 600)
    assert control == {"no-cache": True, "use-cache": True, "ttl": 600, "namespace": namespace_of("h")}
    assert cache_control({"seed": 1, "cache": {"ttl": 99999}}, "h", 600)["ttl"] == 600  # type: ignore[index]
    assert namespace_of("h") != namespace_of("other")
