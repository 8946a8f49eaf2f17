"""The hub's pure logic: key rules, masking, the key cache and row merging. The database is faked only
in the cache tests; test_db_outage.py runs the same paths against a real PostgreSQL being stopped."""

from datetime import timedelta

import pytest
from hub_support import NOW, usage_row

from hub.access import check_key, requested_models
from hub.cache import KeyCache, SpendLedger
from hub.errors import (
    BadDuration,
    BudgetExceeded,
    DatabaseUnavailable,
    ExpiredKey,
    ModelNotAllowed,
    RevokedKey,
)
from hub.keystore import parse_duration
from hub.logger import usage_row as usage_row_from_event
from hub.records import KeyRecord, UsageRow
from hub.tokens import display_prefix, hash_key, mask_key, mask_secrets, new_key


def key_record(**fields: object) -> KeyRecord:
    return KeyRecord(**{"key_hash": "h", "key_prefix": "sk-abcdefgh", "alias": "team-a", **fields})  # type: ignore[arg-type]


def test_a_key_without_limits_may_use_any_model() -> None:
    check_key(key_record(), spend=0.0, models=["anything"], now=NOW)


def test_a_revoked_key_is_refused() -> None:
    with pytest.raises(RevokedKey, match="team-a"):
        check_key(key_record(revoked_at=NOW - timedelta(seconds=1)), 0.0, [], NOW)


def test_an_expired_key_is_refused_at_its_expiry_time() -> None:
    check_key(key_record(expires_at=NOW + timedelta(seconds=1)), 0.0, [], NOW)
    with pytest.raises(ExpiredKey, match="expired"):
        check_key(key_record(expires_at=NOW), 0.0, [], NOW)


def test_a_key_is_refused_a_model_outside_its_list() -> None:
    with pytest.raises(ModelNotAllowed, match="may not use model 'phi:latest'"):
        check_key(key_record(models=["smollm2:135m"]), 0.0, ["phi:latest"], NOW)


def test_budget_is_exceeded_once_spend_reaches_it() -> None:
    check_key(key_record(max_budget=1.0), 0.99, [], NOW)
    with pytest.raises(BudgetExceeded, match=r"spent \$1\.000000 of \$1\.000000"):
        check_key(key_record(max_budget=1.0), 1.0, [], NOW)


def test_requested_models_include_client_fallbacks() -> None:
    body = {"model": "a", "fallbacks": ["b", {"model": "c"}, "a"]}
    assert requested_models(body, None) == ["a", "b", "c"]
    assert requested_models({}, "d") == ["d"]


def test_keys_are_hashed_masked_and_shown_by_prefix_only() -> None:
    key = new_key()
    assert key.startswith("sk-") and len(key) > 40
    assert hash_key(key) != key and len(hash_key(key)) == 64
    assert display_prefix(key) == key[:11]
    assert mask_key(key) == f"sk-...{key[-4:]}"
    assert key not in mask_secrets(f"bad key {key} given")


def test_durations_read_units_and_refuse_garbage() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("45m") == timedelta(minutes=45)
    with pytest.raises(BadDuration):
        parse_duration("soon")


def test_a_later_success_replaces_a_failed_attempt_and_keeps_the_first_start() -> None:
    failed = usage_row(status="failure", second=0, model_requested="qwen2.5:0.5b")
    succeeded = usage_row(status="success", second=2)
    merged = failed.merged_with(succeeded)
    assert merged.status == "success"
    assert merged.started_at == failed.started_at
    assert merged.model_requested == "qwen2.5:0.5b"
    assert succeeded.merged_with(usage_row(status="failure", second=3)).status == "success"


def test_a_usage_row_survives_the_spool_format() -> None:
    row = usage_row(ttft_ms=12.5, error="boom", stream=True)
    assert UsageRow.from_json(row.to_json()) == row


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeKeyTable:
    """Stands in for PostgreSQL: a key table that can be taken offline."""

    def __init__(self, record: KeyRecord, spend: float = 0.0) -> None:
        self.record: KeyRecord | None = record
        self.spend = spend
        self.online = True
        self.lookups = 0

    async def load(self, key_hash: str) -> tuple[KeyRecord, float] | None:
        self.lookups += 1
        if not self.online:
            raise DatabaseUnavailable("offline")
        return None if self.record is None else (self.record, self.spend)


async def test_the_cache_answers_from_memory_within_its_ttl() -> None:
    clock, table = FakeClock(), FakeKeyTable(key_record())
    cache = KeyCache(SpendLedger(), ttl=30, stale_grace=900, clock=clock)
    await cache.get("h", table.load)
    clock.now = 29
    await cache.get("h", table.load)
    assert table.lookups == 1
    clock.now = 31
    await cache.get("h", table.load)
    assert table.lookups == 2


async def test_a_revocation_is_seen_once_the_ttl_runs_out() -> None:
    clock, table = FakeClock(), FakeKeyTable(key_record())
    cache = KeyCache(SpendLedger(), ttl=30, stale_grace=900, clock=clock)
    await cache.get("h", table.load)
    table.record = key_record(revoked_at=NOW)
    clock.now = 31
    entry = await cache.get("h", table.load)
    assert entry is not None and entry.record.revoked_at == NOW


async def test_an_outage_serves_recently_seen_keys_within_the_grace_only() -> None:
    clock, table = FakeClock(), FakeKeyTable(key_record())
    cache = KeyCache(SpendLedger(), ttl=30, stale_grace=900, clock=clock)
    await cache.get("h", table.load)
    table.online = False
    clock.now = 600
    assert await cache.get("h", table.load) is not None
    clock.now = 901
    with pytest.raises(DatabaseUnavailable):
        await cache.get("h", table.load)
    with pytest.raises(DatabaseUnavailable):
        await cache.get("never-seen", table.load)


async def test_spend_counts_costs_not_yet_written_to_the_database() -> None:
    ledger, table = SpendLedger(), FakeKeyTable(key_record(), spend=1.0)
    cache = KeyCache(ledger, ttl=30, stale_grace=900, clock=FakeClock())
    ledger.add_logged("h", 0.25)  # buffered before the lookup: not in the database's 1.0
    entry = await cache.get("h", table.load)
    assert entry is not None
    ledger.add_logged("h", 0.5)  # after the lookup
    assert entry.spend(ledger) == pytest.approx(1.75)
    ledger.add_committed("h", 0.75)  # written meanwhile: the cached sum does not know, nothing changes
    assert entry.spend(ledger) == pytest.approx(1.75)


def logging_event(alias: str | None, status: str = "success") -> dict[str, object]:
    """The parts of LiteLLM's logging kwargs the hub reads (its `standard_logging_object`)."""
    return {
        "standard_logging_object": {
            "litellm_call_id": "call-1", "id": "chatcmpl-1", "status": status, "startTime": 100.0,
            "endTime": 100.5, "completionStartTime": 100.2, "model": "ollama_chat/smollm2:135m",
            "model_id": "smollm2-135m-runtime1", "model_group": "smollm2:135m", "api_base": "http://x/api/chat",
            "prompt_tokens": 30, "completion_tokens": 4, "response_cost": 0.0, "stream": True,
            "metadata": {"user_api_key_hash": "h", "user_api_key_alias": alias},
            "error_str": "boom for sk-abcdefghijklmnop\x00" if status == "failure" else None,
            "error_information": {"error_code": "404"},
        }
    }  # fmt: skip


def test_a_logging_event_becomes_a_row_with_ttft_and_masked_error() -> None:
    row = usage_row_from_event(logging_event("team-a", status="failure"))
    assert row is not None
    assert (row.request_id, row.key_alias, row.status, row.http_status) == ("call-1", "team-a", "failure", 404)
    assert row.ttft_ms == pytest.approx(200) and row.latency_ms == pytest.approx(500)
    assert row.error == "boom for sk-...mnop"


def test_litellms_own_health_probes_are_not_logged() -> None:
    assert usage_row_from_event(logging_event("litellm-internal-health-check")) is None
