"""The request-log writer against a real PostgreSQL, and against one that does not answer."""

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from hub_support import log_rows, usage_row

from devstack.probe import free_port
from hub.cache import SpendLedger
from hub.db import Database, write_usage_sync
from hub.records import UsageRow
from hub.spool import Spool
from hub.usage import UsageWriter

# The writers' pools live in the loop they were opened in: tests and fixtures share the session's.
pytestmark = pytest.mark.asyncio(loop_scope="session")

WriterFactory = Callable[..., tuple[UsageWriter, SpendLedger]]


@pytest.fixture
async def writer() -> AsyncIterator[WriterFactory]:
    """Builds writers and closes them, and their connection pools, when the test ends."""
    built: list[tuple[UsageWriter, Database]] = []

    def build(url: str, spool_path: Path, buffer_limit: int = 100) -> tuple[UsageWriter, SpendLedger]:
        usage, ledger, db = new_writer(url, spool_path, buffer_limit)
        built.append((usage, db))
        return usage, ledger

    yield build
    for usage, db in built:
        await usage.close()
        await db.close()


def new_writer(url: str, spool_path: Path, buffer_limit: int) -> tuple[UsageWriter, SpendLedger, Database]:
    ledger = SpendLedger()
    db = Database(url, connect_timeout=1, retry_after=0.1)

    def write_at_exit(rows: Sequence[UsageRow]) -> None:
        write_usage_sync(url, rows, connect_timeout=1)

    usage = UsageWriter(
        db,
        ledger,
        Spool(spool_path),
        batch_size=10,
        flush_interval=0.2,
        buffer_limit=buffer_limit,
        write_at_exit=write_at_exit,
    )
    return usage, ledger, db


def fresh_ids(count: int) -> list[str]:
    return [f"writer-{uuid.uuid4()}" for _ in range(count)]


def unreachable_url() -> str:
    return f"postgresql://litellm:litellm@127.0.0.1:{free_port()}/litellm"


async def test_rows_are_written_in_batches_and_rewriting_never_duplicates(
    database_url: str, tmp_path: Path, writer: WriterFactory
) -> None:
    usage, ledger = writer(database_url, tmp_path / "spool.jsonl")
    ids = fresh_ids(25)
    for request_id in ids:
        usage.add(usage_row(request_id, cost=0.01, key_hash="writer-key"))
    assert await usage.flush()
    second = Database(database_url, 1, 0.1)
    await second.write_usage([usage_row(request_id) for request_id in ids[:5]])
    await second.close()
    assert len(log_rows(database_url, ids)) == 25
    assert ledger.committed("writer-key") == ledger.logged("writer-key")


async def test_a_logged_failure_is_replaced_by_the_requests_later_success(
    database_url: str, tmp_path: Path, writer: WriterFactory
) -> None:
    usage, _ = writer(database_url, tmp_path / "spool.jsonl")
    [request_id] = fresh_ids(1)
    usage.add(usage_row(request_id, status="failure", second=0, model_requested="qwen2.5:0.5b"))
    assert await usage.flush()
    usage.add(usage_row(request_id, status="success", second=1))
    assert await usage.flush()
    [row] = log_rows(database_url, [request_id])
    assert row["status"] == "success"
    assert row["model_requested"] == "qwen2.5:0.5b"
    assert row["latency_ms"] >= 2000  # from the failed attempt's start to the success's end


async def test_rows_wait_in_memory_and_the_spool_while_the_database_is_down(
    database_url: str, tmp_path: Path, writer: WriterFactory
) -> None:
    spool_path = tmp_path / "spool.jsonl"
    down, ledger = writer(unreachable_url(), spool_path, buffer_limit=10)
    ids = fresh_ids(15)
    for request_id in ids:
        down.add(usage_row(request_id, cost=0.5, key_hash="outage-key"))
    assert not await down.flush()
    assert spool_path.exists()  # past the buffer limit the oldest rows went to the spool
    assert down.buffered < 15
    assert ledger.logged("outage-key") == 7.5  # budgets still count every buffered row
    down.write_at_exit()  # the database is still down: the rest is spooled too
    assert down.buffered == 0

    back, restarted_ledger = writer(database_url, spool_path)
    back.add(usage_row(fresh_ids(1)[0]))  # any first event starts the writer, which counts the spool
    assert restarted_ledger.logged("outage-key") == 7.5
    assert await back.flush()
    assert not spool_path.exists()
    assert sorted(row["request_id"] for row in log_rows(database_url, ids)) == sorted(ids)


async def test_a_row_postgres_refuses_is_dropped_without_blocking_the_others(
    database_url: str, tmp_path: Path, writer: WriterFactory
) -> None:
    usage, _ = writer(database_url, tmp_path / "spool.jsonl")
    good, bad = fresh_ids(3), fresh_ids(1)
    for request_id in good[:2]:
        usage.add(usage_row(request_id))
    usage.add(usage_row(bad[0], status="unknown"))  # violates the table's status check
    usage.add(usage_row(good[2]))
    assert await usage.flush()
    assert usage.buffered == 0
    assert sorted(row["request_id"] for row in log_rows(database_url, good + bad)) == sorted(good)
