"""KeyStore's people: each person's key found by account id, revoked, re-limited, and their usage
followed across re-created keys; service keys marked. Real PostgreSQL throughout."""

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from hub_support import NOW, usage_row

from hub.db import UPSERT_USAGE, usage_params
from hub.errors import NoKeyWithHash, NoSuchKey, PersonHasKey
from hub.keystore import KeyStore, PersonUsageLine, connect
from hub.records import KeyRecord


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(database_url, 5) as connection:
        yield connection


@pytest.fixture
def store(conn: psycopg.Connection[Any]) -> KeyStore:
    return KeyStore(conn)


def person_key(store: KeyStore, models: list[str] | None = None, **limits: Any) -> tuple[str, KeyRecord]:
    """A person's key as the accounts package makes it: alias user:<login>, metadata user_id and login."""
    user_id, login = str(uuid.uuid4()), f"p{uuid.uuid4().hex[:8]}"
    metadata = {"user_id": user_id, "login": login}
    _, record = store.create(f"user:{login}", models or [], metadata=metadata, **limits)
    return user_id, record


def log_request(conn: psycopg.Connection[Any], record: KeyRecord, model: str, **fields: Any) -> None:
    row = usage_row(uuid.uuid4().hex, key_hash=record.key_hash, key_alias=record.alias, model_group=model, **fields)
    conn.execute(UPSERT_USAGE, usage_params(row))


def test_for_user_finds_the_persons_active_key_with_its_spend(conn: psycopg.Connection[Any], store: KeyStore) -> None:
    user_id, record = person_key(store, ["smollm2:135m"], max_budget=2.0, rpm_limit=5)
    log_request(conn, record, "smollm2:135m", cost=0.25)
    listing = store.for_user(user_id)
    assert listing is not None
    assert listing.record == record and listing.spend == 0.25
    assert (listing.record.user_id, listing.record.is_service) == (user_id, False)
    assert store.for_user(str(uuid.uuid4())) is None


def test_revoke_for_user_ends_the_key_and_a_new_one_can_follow(store: KeyStore) -> None:
    user_id, record = person_key(store)
    revoked = store.revoke_for_user(user_id)
    assert revoked is not None and revoked.key_hash == record.key_hash and revoked.revoked_at is not None
    assert store.for_user(user_id) is None
    assert store.revoke_for_user(user_id) is None  # nothing left to revoke
    _, again = store.create(record.alias, [], metadata=record.metadata)
    listing = store.for_user(user_id)
    assert listing is not None and listing.record.key_hash == again.key_hash


def test_a_persons_new_key_carries_what_their_earlier_keys_spent(
    conn: psycopg.Connection[Any], store: KeyStore
) -> None:
    user_id, record = person_key(store, max_budget=1.0)
    log_request(conn, record, "smollm2:135m", cost=0.75)
    store.revoke_for_user(user_id)  # disabled, then enabled again: a new key with the same limits
    key, again = store.create(record.alias, [], max_budget=1.0, metadata=record.metadata)
    log_request(conn, again, "smollm2:135m", cost=0.125)
    listing = store.for_user(user_id)
    assert listing is not None and listing.spend == 0.875
    assert store.get(key) == listing  # what the proxy's auth reads (KEY_WITH_SPEND) agrees
    other_id, other = person_key(store)
    assert store.for_user(other_id) == type(listing)(other, 0.0)  # nobody else's spend is counted


def test_a_person_has_at_most_one_active_key(store: KeyStore) -> None:
    user_id, record = person_key(store)
    with pytest.raises(PersonHasKey, match=user_id):
        store.create(f"{record.alias}-2", [], metadata=record.metadata)


def test_update_limits_changes_models_budget_and_rpm_of_an_active_key(store: KeyStore) -> None:
    user_id, record = person_key(store, rpm_limit=5)
    updated = store.update_limits(record.key_hash, ["phi:latest"], 1.5, None)
    assert (updated.models, updated.max_budget, updated.rpm_limit) == (["phi:latest"], 1.5, None)
    assert updated.metadata == record.metadata  # who the key belongs to is unchanged
    store.revoke_for_user(user_id)
    with pytest.raises(NoKeyWithHash):
        store.update_limits(record.key_hash, [], None, None)


def test_mark_service_flags_the_active_key_of_an_alias(store: KeyStore) -> None:
    alias = f"svc-{uuid.uuid4().hex[:8]}"
    _, record = store.create(alias, [], metadata={"note": "kept"})
    assert not record.is_service
    marked = store.mark_service(alias)
    assert marked.is_service and marked.metadata == {"note": "kept", "service": True}
    with pytest.raises(NoSuchKey):
        store.mark_service("no-such-alias")


def test_usage_by_person_follows_a_person_across_revoked_and_recreated_keys(
    conn: psycopg.Connection[Any], store: KeyStore
) -> None:
    user_id, first = person_key(store)
    log_request(conn, first, "smollm2:135m", cost=0.5, prompt_tokens=10, completion_tokens=20)
    store.revoke_for_user(user_id)
    _, second = store.create(first.alias, [], metadata=first.metadata)
    log_request(conn, second, "smollm2:135m", cost=0.25, prompt_tokens=1, completion_tokens=2)
    log_request(conn, second, "phi:latest", status="failure")
    log_request(conn, second, "phi:latest", second=-3600)  # before `since`: not counted
    other_id, other = person_key(store)
    log_request(conn, other, "smollm2:135m")

    lines = store.usage_by_person(NOW - timedelta(minutes=1), user_id)
    login = str(first.login)
    assert lines == [
        PersonUsageLine(user_id, login, "phi:latest", 1, 1, 3, 4, 0.0),
        PersonUsageLine(user_id, login, "smollm2:135m", 2, 0, 11, 22, 0.75),
    ]
    everyone = store.usage_by_person(NOW - timedelta(minutes=1))
    assert {line.user_id for line in everyone} >= {user_id, other_id}
    assert all(line.user_id is not None for line in everyone)  # team keys' rows are nobody's
