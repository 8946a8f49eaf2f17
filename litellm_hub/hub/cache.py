"""Key checks cached in memory: quick, revocable within a TTL, and resilient to a database outage."""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hub.errors import DatabaseUnavailable
from hub.records import KeyRecord

KeyLoader = Callable[[str], Awaitable[tuple[KeyRecord, float] | None]]
SpendLoader = Callable[[str], Awaitable[float]]
PersonLoader = Callable[[str], Awaitable[str | None]]


class SpendLedger:
    """Costs this process has logged, so budgets count requests whose rows are not in PostgreSQL yet.

    `logged` grows when a row is buffered and `committed` when it reaches the database. A key's spend
    is the database's sum at the last lookup plus what was logged since, minus what had already been
    committed then (and so was in that sum).
    """

    def __init__(self) -> None:
        self._logged: dict[str, float] = {}
        self._committed: dict[str, float] = {}

    def add_logged(self, key_hash: str | None, cost: float) -> None:
        if key_hash and cost:
            self._logged[key_hash] = self._logged.get(key_hash, 0.0) + cost

    def add_committed(self, key_hash: str | None, cost: float) -> None:
        if key_hash and cost:
            self._committed[key_hash] = self._committed.get(key_hash, 0.0) + cost

    def logged(self, key_hash: str) -> float:
        return self._logged.get(key_hash, 0.0)

    def committed(self, key_hash: str) -> float:
        return self._committed.get(key_hash, 0.0)


@dataclass
class CachedKey:
    record: KeyRecord
    db_spend: float
    committed_at_fetch: float
    fetched_at: float

    def spend(self, ledger: SpendLedger) -> float:
        return self.db_spend + ledger.logged(self.record.key_hash) - self.committed_at_fetch


async def current_spend(cached: CachedKey, ledger: SpendLedger, load: SpendLoader) -> float:
    """A budgeted key's spend as of now, from the database every proxy instance adds to (answered requests
    count there before their answer leaves the proxy). Without a budget, or while the database is down, the
    cached figure plus what this process logged since does."""
    if cached.record.max_budget is None:
        return cached.spend(ledger)
    try:
        return await load(cached.record.key_hash)
    except DatabaseUnavailable:
        return cached.spend(ledger)


class KeyCache:
    """Serves a key from memory for `ttl` seconds; past that asks the database, and while the
    database is unreachable keeps serving keys it saw within `stale_grace` seconds."""

    def __init__(
        self, ledger: SpendLedger, ttl: float, stale_grace: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ledger = ledger
        self._ttl = ttl
        self._stale_grace = stale_grace
        self._clock = clock
        self._entries: dict[str, CachedKey] = {}

    async def get(self, key_hash: str, load: KeyLoader) -> CachedKey | None:
        """The key, or None when the database says it does not exist.

        Raises DatabaseUnavailable when the database is down and the key was not seen recently enough.
        """
        now = self._clock()
        entry = self._entries.get(key_hash)
        if entry is not None and now - entry.fetched_at < self._ttl:
            return entry
        # Read before the query: a batch committed while the query runs is then counted twice at
        # worst, never missed, so a budget errs on the safe side.
        committed_before = self._ledger.committed(key_hash)
        try:
            loaded = await load(key_hash)
        except DatabaseUnavailable:
            if entry is not None and now - entry.fetched_at < self._stale_grace:
                return entry
            raise
        if loaded is None:
            self._entries.pop(key_hash, None)
            return None
        record, db_spend = loaded
        entry = CachedKey(record, db_spend, committed_before, self._clock())
        self._entries[key_hash] = entry
        return entry

    def forget(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)


class PersonKeys:
    """Which key is a person's: account id -> the hash of their active key, or None (a disabled account).

    Cached like keys: for `ttl` seconds, and through a database outage for `stale_grace` seconds. The
    key itself goes through KeyCache, so its revocation is seen within that cache's TTL.
    """

    def __init__(self, ttl: float, stale_grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._stale_grace = stale_grace
        self._clock = clock
        self._entries: dict[str, tuple[str | None, float]] = {}

    async def get(self, user_id: str, load: PersonLoader) -> str | None:
        now = self._clock()
        entry = self._entries.get(user_id)
        if entry is not None and now - entry[1] < self._ttl:
            return entry[0]
        try:
            key_hash = await load(user_id)
        except DatabaseUnavailable:
            if entry is not None and now - entry[1] < self._stale_grace:
                return entry[0]
            raise
        self._entries[user_id] = (key_hash, self._clock())
        return key_hash

    def forget(self, user_id: str) -> None:
        self._entries.pop(user_id, None)
