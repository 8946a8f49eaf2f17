"""The proxy process's hub objects, built once and shared by the auth hook and the logger.

LiteLLM loads `hub.auth` and `hub.logger` from file paths, as module copies of their own, so
the shared state lives here, in a module both import the ordinary way.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from litellm.constants import REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT

from hub.cache import KeyCache, PersonKeys, SpendLedger
from hub.config import HubSettings, get_settings
from hub.db import Database, write_usage_sync
from hub.records import UsageRow
from hub.shared_state import RedisWatch
from hub.spool import Spool
from hub.usage import UsageWriter


@dataclass(frozen=True)
class HubState:
    settings: HubSettings
    db: Database
    ledger: SpendLedger
    keys: KeyCache
    people: PersonKeys
    usage: UsageWriter
    redis: RedisWatch


def build_state(settings: HubSettings) -> HubState:
    url = settings.hub_database_url.get_secret_value()
    db = Database(url, settings.hub_db_connect_timeout, settings.hub_db_retry_after)
    ledger = SpendLedger()

    def write_at_exit(rows: Sequence[UsageRow]) -> None:
        write_usage_sync(url, rows, settings.hub_db_connect_timeout)

    usage = UsageWriter(
        db,
        ledger,
        Spool(settings.spool_path, settings.hub_spool_max_bytes),
        batch_size=settings.hub_log_batch_size,
        flush_interval=settings.hub_log_flush_interval,
        buffer_limit=settings.hub_log_buffer_limit,
        write_at_exit=write_at_exit,
    )
    keys = KeyCache(ledger, settings.hub_key_cache_ttl, settings.hub_key_stale_grace)
    people = PersonKeys(settings.hub_key_cache_ttl, settings.hub_key_stale_grace)
    redis = RedisWatch(
        settings.redis_url.get_secret_value(),
        settings.hub_redis_check_interval,
        settings.hub_db_connect_timeout,
        resume_after=REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT + settings.hub_redis_check_interval,
    )
    return HubState(settings, db, ledger, keys, people, usage, redis)


@lru_cache
def get_state() -> HubState:
    return build_state(get_settings())
