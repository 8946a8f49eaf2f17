"""A service key acting for people through a real proxy: each person's models, rate, budget and
revocation apply to them alone, and the request log names them.

Like test_key_limits.py: a private proxy with a price on smollm2:135m (so a budget can run out) and a
one-second key cache (so a revocation shows within the test).
"""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hub_support import (
    CACHE_TTL,
    SMOLLM,
    bearer,
    chat_body,
    run_keys,
    wait_for_rows,
    wait_for_status,
)

from hub.access import USER_HEADER
from hub.keystore import KeyStore, connect
from hub.records import KeyRecord
from procs import scaled


@pytest.fixture(scope="module")
def store(database_url: str) -> Iterator[KeyStore]:
    with connect(database_url, 5) as conn:
        yield KeyStore(conn)


@pytest.fixture(scope="module")
def service_key(database_url: str) -> str:
    """Made as an administrator makes the agent host's key: `python -m hub.keys create --service`."""
    result = run_keys(database_url, "create", "--alias", f"svc-{uuid.uuid4().hex[:8]}", "--service")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def new_person(store: KeyStore, models: list[str] | None = None, **limits: Any) -> tuple[str, KeyRecord]:
    """A person's key as the accounts package makes it; its raw key is dropped."""
    user_id, login = str(uuid.uuid4()), f"p{uuid.uuid4().hex[:8]}"
    _, record = store.create(f"user:{login}", models or [], metadata={"user_id": user_id, "login": login}, **limits)
    return user_id, record


def chat_for(
    http: httpx.Client, service_key: str, user_id: str, model: str = SMOLLM, max_tokens: int = 8
) -> httpx.Response:
    headers = {**bearer(service_key), USER_HEADER: user_id}
    return http.post("/v1/chat/completions", headers=headers, json=chat_body(model, max_tokens=max_tokens))


def test_a_person_restricted_to_one_model_gets_it_and_is_refused_another(
    http: httpx.Client, store: KeyStore, service_key: str
) -> None:
    user_id, person = new_person(store, [SMOLLM])
    assert chat_for(http, service_key, user_id).status_code == 200
    refused = chat_for(http, service_key, user_id, "phi:latest")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "key_model_access_denied"
    assert error["message"] == f"account '{person.login}' may not use model 'phi:latest'; allowed: {SMOLLM}"
    listed = http.get("/v1/models", headers={**bearer(service_key), USER_HEADER: user_id})
    assert [model["id"] for model in listed.json()["data"]] == [SMOLLM]


def test_a_persons_rpm_limit_stops_them_but_not_another_person_on_the_same_service_key(
    http: httpx.Client, store: KeyStore, service_key: str
) -> None:
    limited, _ = new_person(store, rpm_limit=2)
    other, _ = new_person(store, rpm_limit=2)
    statuses = [chat_for(http, service_key, limited, max_tokens=2).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert chat_for(http, service_key, other, max_tokens=2).status_code == 200
    assert chat_for(http, service_key, limited, max_tokens=2).status_code == 429


def test_a_persons_spent_budget_gets_their_clear_error(http: httpx.Client, store: KeyStore, service_key: str) -> None:
    user_id, person = new_person(store, max_budget=0.01)
    first = chat_for(http, service_key, user_id)
    assert first.status_code == 200, first.text
    assert float(first.headers["x-litellm-response-cost"]) > 0.01  # the priced config applies
    refused = wait_for_status(http, service_key, 400, chat_body(), scaled(10), headers={USER_HEADER: user_id})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "budget_exceeded"
    assert error["message"].startswith(f"budget exceeded for account '{person.login}': spent $0.")
    other, _ = new_person(store)
    assert chat_for(http, service_key, other).status_code == 200  # the service key itself spent nothing


def test_the_request_log_names_the_person(
    http: httpx.Client, store: KeyStore, service_key: str, database_url: str
) -> None:
    user_id, person = new_person(store)
    response = chat_for(http, service_key, user_id)
    assert response.status_code == 200, response.text
    request_id = response.headers["x-litellm-call-id"]
    row = wait_for_rows(database_url, [request_id], timeout=scaled(20))[request_id]
    assert (row["key_hash"], row["key_alias"]) == (person.key_hash, person.alias)
    usage = store.usage_by_person(row["started_at"], user_id)
    assert [(line.login, line.model, line.requests) for line in usage] == [(person.login, SMOLLM, 1)]


def test_a_revoked_person_key_stops_working_through_the_service_key(
    http: httpx.Client, store: KeyStore, service_key: str
) -> None:
    user_id, _ = new_person(store)
    assert chat_for(http, service_key, user_id, max_tokens=2).status_code == 200
    store.revoke_for_user(user_id)  # the account was disabled
    body = chat_body(max_tokens=2)
    refused = wait_for_status(http, service_key, 401, body, scaled(CACHE_TTL + 10), headers={USER_HEADER: user_id})
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["type"] == "account_disabled"
    assert error["message"] == f"account {user_id} is disabled or has no proxy key"


def test_bad_uses_of_the_header_are_refused(http: httpx.Client, store: KeyStore, service_key: str) -> None:
    team_key, _ = store.create(f"team-{uuid.uuid4().hex[:8]}", [])
    user_id, _ = new_person(store)
    not_service = chat_for(http, team_key, user_id)
    assert not_service.status_code == 403
    assert "is not a service key" in not_service.json()["error"]["message"]
    malformed = chat_for(http, service_key, "not-an-account-id")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["message"] == f"{USER_HEADER} must be an account id (a UUID)"
