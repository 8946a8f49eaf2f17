"""A service key acting for a person: `authenticate()` against a real PostgreSQL, requests built in memory.

The proxy tests (test_hub_people_proxy.py) show the same through LiteLLM; these show each answer and that
the returned UserAPIKeyAuth is what LiteLLM's rate limiter and the hub's logger read as the person.
"""

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hub_support import SMOLLM, chat_body
from litellm.proxy._types import UserAPIKeyAuth
from litellm.proxy.litellm_pre_call_utils import LiteLLMProxyRequestSetup
from starlette.requests import Request

from hub.access import USER_HEADER, person_id
from hub.auth import authenticate
from hub.cache import PersonKeys
from hub.config import HubSettings
from hub.errors import (
    DatabaseUnavailable,
    InvalidRequest,
    ModelNotAllowed,
    NotAServiceKey,
    PersonHasNoKey,
    RevokedKey,
)
from hub.keystore import KeyStore, connect
from hub.records import KeyRecord
from hub.state import HubState, build_state
from procs import MASTER_KEY

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def store(database_url: str) -> Iterator[KeyStore]:
    with connect(database_url, 5) as conn:
        yield KeyStore(conn)


@pytest.fixture
async def state(database_url: str) -> AsyncIterator[HubState]:
    # TTL 0: every request asks PostgreSQL, so a revocation shows at once.
    settings = HubSettings(hub_database_url=database_url, litellm_master_key=MASTER_KEY, hub_key_cache_ttl=0)
    hub = build_state(settings)
    yield hub
    await hub.db.close()


@pytest.fixture(scope="module")
def service_key(store: KeyStore) -> str:
    key, _ = store.create(f"svc-{uuid.uuid4().hex[:8]}", [], metadata={"service": True})
    return key


def new_person(store: KeyStore, models: list[str] | None = None, **limits: Any) -> tuple[str, KeyRecord]:
    user_id, login = str(uuid.uuid4()), f"p{uuid.uuid4().hex[:8]}"
    _, record = store.create(f"user:{login}", models or [], metadata={"user_id": user_id, "login": login}, **limits)
    return user_id, record


def chat_request(key: str, *people: str, body: dict[str, Any] | None = None) -> Request:
    raw = json.dumps(body or chat_body()).encode()
    headers = [(b"authorization", f"Bearer {key}".encode()), (b"content-type", b"application/json")]
    headers += [(USER_HEADER.lower().encode(), person.encode()) for person in people]
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
             "query_string": b"", "headers": headers, "path_params": {}}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    return Request(scope, receive)


async def auth(state: HubState, key: str, *people: str, body: dict[str, Any] | None = None) -> UserAPIKeyAuth:
    return await authenticate(state, chat_request(key, *people, body=body), f"Bearer {key}")


async def test_a_service_key_acts_as_the_persons_own_key(state: HubState, store: KeyStore, service_key: str) -> None:
    user_id, person = new_person(store, [SMOLLM], max_budget=3.0, rpm_limit=7, tpm_limit=900)
    result = await auth(state, service_key, user_id)
    assert (result.key_alias, result.models, result.max_budget) == (person.alias, [SMOLLM], 3.0)
    assert (result.rpm_limit, result.tpm_limit, result.spend) == (7, 900, 0.0)
    # LiteLLM's rpm/tpm limiter counts by `api_key`; the logged hash and alias are what hub.logger writes.
    assert result.api_key == result.token == person.key_hash
    logged = LiteLLMProxyRequestSetup.get_sanitized_user_information_from_key(result)
    assert (logged["user_api_key_hash"], logged["user_api_key_alias"]) == (person.key_hash, person.alias)


async def test_a_service_key_without_the_header_acts_as_itself(state: HubState, service_key: str) -> None:
    result = await auth(state, service_key)
    assert result.key_alias is not None and result.key_alias.startswith("svc-")
    assert result.rpm_limit is None


async def test_the_master_key_may_act_for_a_person_too(state: HubState, store: KeyStore) -> None:
    user_id, person = new_person(store)
    result = await auth(state, MASTER_KEY, user_id)
    assert (result.key_alias, result.api_key) == (person.alias, person.key_hash)
    assert result.user_role is None  # the person's rights, not the master key's


async def test_the_persons_model_list_applies_with_their_account_named(
    state: HubState, store: KeyStore, service_key: str
) -> None:
    user_id, person = new_person(store, [SMOLLM])
    with pytest.raises(ModelNotAllowed) as refused:
        await auth(state, service_key, user_id, body=chat_body("phi:latest"))
    assert str(refused.value) == f"account '{person.login}' may not use model 'phi:latest'; allowed: {SMOLLM}"


async def test_the_header_from_a_key_that_is_not_a_service_key_is_403(state: HubState, store: KeyStore) -> None:
    alias = f"team-{uuid.uuid4().hex[:8]}"
    team_key, _ = store.create(alias, [])
    user_id, _ = new_person(store)
    with pytest.raises(NotAServiceKey) as refused:
        await auth(state, team_key, user_id)
    assert refused.value.status_code == 403
    expected = f"API key '{alias}' is not a service key: it may not act for a person with {USER_HEADER}"
    assert str(refused.value) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["bob"], f"{USER_HEADER} must be an account id (a UUID)"),
        (["0" * 65], f"{USER_HEADER} is too long: it must be an account id (a UUID)"),
        ([str(uuid.uuid4()), str(uuid.uuid4())], f"send one {USER_HEADER} header, not 2"),
        ([""], f"{USER_HEADER} must be an account id (a UUID)"),
    ],
)
async def test_a_malformed_header_is_400(state: HubState, service_key: str, values: list[str], message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await auth(state, service_key, *values)
    assert (refused.value.status_code, refused.value.param, str(refused.value)) == (400, USER_HEADER, message)


async def test_an_account_id_is_read_in_its_canonical_spelling() -> None:  # async: the module's asyncio mark
    user_id = uuid.uuid4()
    assert person_id([str(user_id).upper()]) == person_id([f"{{{user_id}}}"]) == str(user_id)


async def test_a_person_without_an_active_key_is_401(state: HubState, store: KeyStore, service_key: str) -> None:
    user_id, _ = new_person(store)
    await auth(state, service_key, user_id)
    store.revoke_for_user(user_id)  # the account was disabled
    for person in (user_id, str(uuid.uuid4())):
        with pytest.raises(PersonHasNoKey) as refused:
            await auth(state, service_key, person)
        assert (refused.value.status_code, str(refused.value)) == (
            401,
            f"account {person} is disabled or has no proxy key",
        )


async def test_a_person_enabled_again_is_served_with_their_new_key(
    state: HubState, store: KeyStore, service_key: str
) -> None:
    user_id, person = new_person(store)
    await auth(state, service_key, user_id)
    store.revoke_for_user(user_id)
    _, again = store.create(person.alias, [], metadata=person.metadata)
    assert (await auth(state, service_key, user_id)).api_key == again.key_hash


async def test_a_revoked_service_key_cannot_act_for_anyone(state: HubState, store: KeyStore) -> None:
    alias = f"svc-{uuid.uuid4().hex[:8]}"
    key, _ = store.create(alias, [], metadata={"service": True})
    user_id, _ = new_person(store)
    store.revoke(alias)
    with pytest.raises(RevokedKey):
        await auth(state, key, user_id)


async def test_the_person_lookup_is_cached_within_the_ttl_and_through_an_outage() -> None:
    now, lookups, online = [0.0], [], [True]

    async def load(user_id: str) -> str | None:
        lookups.append(user_id)
        if not online[0]:
            raise DatabaseUnavailable("offline")
        return None if user_id == "nobody" else "h"

    people = PersonKeys(ttl=30, stale_grace=900, clock=lambda: now[0])
    assert await people.get("u", load) == "h" and await people.get("nobody", load) is None
    now[0] = 29
    assert await people.get("u", load) == "h" and await people.get("nobody", load) is None
    assert lookups == ["u", "nobody"]
    now[0], online[0] = 31, False
    assert await people.get("u", load) == "h"  # within the grace
    now[0] = 1000
    with pytest.raises(DatabaseUnavailable):
        await people.get("u", load)
