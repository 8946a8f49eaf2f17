"""Buffers request-log rows and writes them to PostgreSQL in batches, surviving database outages.

A chat never waits for, or fails because of, the database: `add` only touches memory. A background
task flushes every `flush_interval` seconds or `batch_size` rows. While PostgreSQL is down rows stay
buffered; past `buffer_limit` the oldest go to a JSONL spool file, which is also where rows go at exit
when the database cannot take them. The spool is written to PostgreSQL first once it answers again.
Rows are upserted by request id, so writing one twice never duplicates it.
"""

import asyncio
import atexit
import contextlib
import logging
from collections.abc import Callable, Sequence

import psycopg

from hub.cache import SpendLedger
from hub.db import Database
from hub.errors import DatabaseUnavailable
from hub.records import UsageRow
from hub.spool import Spool

log = logging.getLogger("hub.usage")

SyncWriter = Callable[[Sequence[UsageRow]], None]


class UsageWriter:
    def __init__(
        self,
        db: Database,
        ledger: SpendLedger,
        spool: Spool,
        *,
        batch_size: int,
        flush_interval: float,
        buffer_limit: int,
        write_at_exit: SyncWriter | None = None,
    ) -> None:
        self._db = db
        self._ledger = ledger
        self._spool = spool
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._buffer_limit = buffer_limit
        self._write_at_exit = write_at_exit
        self._buffer: dict[str, UsageRow] = {}  # by request id, oldest first
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._flush_lock: asyncio.Lock | None = None
        self._started = False
        self._outage = False
        self._stopping = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def add(self, row: UsageRow) -> None:
        """Queues a row; never blocks and never raises for database trouble."""
        self.start()
        earlier = self._buffer.get(row.request_id)
        merged = earlier.merged_with(row) if earlier is not None else row
        self._ledger.add_logged(merged.key_hash, merged.cost - (earlier.cost if earlier is not None else 0.0))
        self._buffer[row.request_id] = merged
        if self._stopping:  # requests finishing during shutdown: no flush task will run again
            self.write_at_exit()
            return
        if len(self._buffer) > self._buffer_limit:
            self._spill()
        # A row that costs something is written at once: every proxy instance checks budgets against the
        # database's spend, so it must not wait for the next interval.
        if (len(self._buffer) >= self._batch_size or merged.cost > 0) and self._wakeup is not None:
            self._wakeup.set()

    def start(self) -> None:
        """Loads the spool's accounting and starts the flush task (in the running loop, if any)."""
        if self._started:
            return
        self._started = True
        # Rows a previous run spooled are not in the database yet: budgets must count them.
        for row in self._spool.read():
            self._ledger.add_logged(row.key_hash, row.cost)
        atexit.register(self.write_at_exit)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): rows wait for write_at_exit
        self._wakeup = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task = loop.create_task(self._run(), name="hub-usage-writer")

    async def _run(self) -> None:
        assert self._wakeup is not None
        # Tables exist as soon as the proxy is up, for anyone reading them before the first request.
        with contextlib.suppress(DatabaseUnavailable):
            await self._db.ensure_schema()
        try:
            while True:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can lose a cancellation that
                # races with the event, leaving close() waiting forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush_interval):
                        await self._wakeup.wait()
                self._wakeup.clear()
                try:
                    await self.flush()
                except Exception:  # the writer must outlive any surprise, or logging stops for good
                    log.exception("hub usage writer: unexpected error while flushing; will retry")
        except asyncio.CancelledError:
            # An orderly end of the event loop cancels this task: write what is left.
            self.write_at_exit()
            raise

    async def flush(self) -> bool:
        """Writes the spool, then the buffer. True when everything reached the database."""
        self.start()
        lock = self._flush_lock or asyncio.Lock()
        async with lock:
            try:
                await self._flush_spool()
                while self._buffer:
                    await self._flush_batch()
            except DatabaseUnavailable as exc:
                if not self._outage:
                    log.warning("hub usage log: %s; %d rows kept for later", exc, len(self._buffer))
                self._outage = True
                return False
        if self._outage:
            log.warning("hub usage log: database is back; buffered rows written")
            self._outage = False
        return True

    async def _flush_spool(self) -> None:
        if not self._spool.exists():
            return
        rows = self._spool.read()
        for start in range(0, len(rows), self._batch_size):
            await self._db.write_usage(rows[start : start + self._batch_size])
        self._spool.remove()
        for row in rows:
            self._ledger.add_committed(row.key_hash, row.cost)

    async def _flush_batch(self) -> None:
        # Rows leave the buffer only once committed: a shutdown during the write still finds them.
        batch = list(self._buffer.values())[: self._batch_size]
        try:
            await self._db.write_usage(batch)
            written = batch
        except psycopg.Error:  # not an outage (that is DatabaseUnavailable): some row is unwritable
            written = await self._write_one_by_one(batch)
        for row in written:
            self._ledger.add_committed(row.key_hash, row.cost)
        for row in batch:
            if self._buffer.get(row.request_id) is row:  # else a later event replaced it: write that next
                del self._buffer[row.request_id]

    async def _write_one_by_one(self, batch: list[UsageRow]) -> list[UsageRow]:
        """Writes what it can; a row PostgreSQL refuses is dropped so it cannot block every later one."""
        written = []
        for row in batch:
            try:
                await self._db.write_usage([row])
                written.append(row)
            except psycopg.Error as exc:
                log.error("hub usage log: dropping request %s, refused by PostgreSQL (%s)", row.request_id, exc)
        return written

    def _spill(self) -> None:
        count = len(self._buffer) - self._buffer_limit // 2
        ids = list(self._buffer)[:count]
        spilled = self._spool.append(self._buffer.pop(request_id) for request_id in ids)
        log.warning("hub usage log: buffer full, %d rows moved to %s", spilled, self._spool.path)

    def stop(self) -> None:
        """The process is about to end: write (or spool) everything now and every row from here on."""
        self._stopping = True
        self.write_at_exit()

    def write_at_exit(self) -> None:
        """At exit: straight to PostgreSQL if it answers, else to the spool for the next start."""
        rows = list(self._buffer.values())
        if not rows:
            return
        self._buffer = {}
        try:
            if self._write_at_exit is None:
                raise DatabaseUnavailable("no synchronous writer")
            self._write_at_exit(rows)
        except Exception as exc:
            self._spool.append(rows)
            log.warning("hub usage log: %d rows spooled at exit (%s)", len(rows), type(exc).__name__)

    async def close(self) -> None:
        """Stops the background task after a last flush (tests and orderly shutdowns)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
