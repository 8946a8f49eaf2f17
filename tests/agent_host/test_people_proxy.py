"""What the host sends to the proxy for a person counts as theirs: the hub logs it under their own key."""

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from host_support import MODEL, admin_auth, bearer, chat_body, create_person, sign_in, sse_data

from hub.keystore import KeyStore
from hub.tokens import hash_key
from procs import MASTER_KEY, PostgresInstance, host_proxy_key, hub_url_of, scaled


@pytest.fixture(scope="module")
def person(people_host: str) -> dict[str, Any]:
    login = f"proxy-{uuid.uuid4().hex[:8]}"
    account = create_person(people_host, login)
    return {**account, "headers": bearer(sign_in(people_host, login))}


@pytest.fixture(scope="module")
def hub_db(postgres: PostgresInstance) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres.url("litellm"), autocommit=True) as conn:
        yield conn


def logged_under(conn: psycopg.Connection[Any], key_hash: str, since: datetime) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT key_alias, model_requested, stream FROM hub_request_log WHERE key_hash = %s AND started_at >= %s",
        (key_hash, since),
    ).fetchall()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_chats_agent_runs_and_summaries_are_logged_under_the_persons_own_key(
    people_host: str, person: dict[str, Any], hub_db: psycopg.Connection[Any], postgres: PostgresInstance
) -> None:
    listing = KeyStore(hub_db).for_user(person["id"])
    assert listing is not None and listing.record.alias == f"user:{person['login']}"
    mine = listing.record.key_hash
    service = hash_key(host_proxy_key(MASTER_KEY, hub_url_of(postgres.url("genailabs"))))
    since = datetime.now(UTC)
    headers = person["headers"]

    def count() -> int:
        return len(logged_under(hub_db, mine, since))

    reply = httpx.post(f"{people_host}/v1/chat/completions", json=chat_body("Say hi."), headers=headers, timeout=120)
    assert reply.status_code == 200, reply.text
    wait_until(lambda: count() >= 1, "the chat is not in the request log under the person's key")

    body = chat_body("Count to three.", stream=True)
    with httpx.stream("POST", f"{people_host}/v1/chat/completions", json=body, headers=headers, timeout=120) as r:
        assert r.status_code == 200
        assert sse_data([line for line in r.iter_lines() if line])
    wait_until(lambda: count() >= 2, "the streamed chat is not logged under the person's key")

    run = httpx.post(
        f"{people_host}/agents/run",
        json={"task": "Hello, who are you?", "agent": "assistant"},
        headers=headers,
        timeout=300,
    )
    assert run.status_code == 200, run.text
    wait_until(lambda: count() >= 3, "the agent run is not logged under the person's key")

    # A 512-token window and long turns: the session's older turns are folded into a summary by model calls.
    session_id = _session(people_host, headers)
    before, turns = count(), 0
    fact = "My favourite colour is blue and I live in a small town by the sea with my three cats. "
    for turn in range(8):
        turn_body = chat_body(f"Turn {turn}. {fact * 2}", max_tokens=16, session_id=session_id)
        response = httpx.post(f"{people_host}/v1/chat/completions", json=turn_body, headers=headers, timeout=180)
        assert response.status_code == 200, response.text
        if response.json()["context"]["summary_updated"]:
            turns = turn + 1
            break
    assert turns, "no turn was summarised"
    # Each turn is one call; the summary took at least one more, all of them the person's.
    wait_until(lambda: count() >= before + turns + 1, "the summary's model calls are not logged under the person")

    rows = logged_under(hub_db, mine, since)
    assert {alias for alias, _, _ in rows} == {f"user:{person['login']}"}
    assert {model for _, model, _ in rows} == {MODEL}
    assert any(stream for _, _, stream in rows)
    assert logged_under(hub_db, service, since) == [], "a call went out as the host's service key itself"


def _session(url: str, headers: dict[str, str]) -> str:
    response = httpx.post(f"{url}/sessions", json={"title": "long"}, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_usage_is_ones_own_and_an_admin_sees_everyones(people_host: str, person: dict[str, Any]) -> None:
    reply = httpx.post(
        f"{people_host}/v1/chat/completions", json=chat_body("Hi."), headers=person["headers"], timeout=120
    )
    assert reply.status_code == 200

    def own() -> list[dict[str, Any]]:
        response = httpx.get(f"{people_host}/usage", headers=person["headers"], timeout=30)
        assert response.status_code == 200, response.text
        return list(response.json()["usage"])

    wait_until(lambda: any(line["requests"] > 0 for line in own()), "no usage for the person")
    assert {line["user_id"] for line in own()} == {person["id"]}
    assert {line["model"] for line in own()} == {MODEL}
    everyone = httpx.get(f"{people_host}/usage", params={"all": "true", "days": 1}, headers=admin_auth(), timeout=30)
    assert everyone.status_code == 200
    people = {line["user_id"] for line in everyone.json()["usage"]}
    assert person["id"] in people
    assert httpx.get(f"{people_host}/usage", params={"days": 0}, headers=person["headers"]).status_code == 422


def test_a_model_the_person_may_not_use_is_refused_for_them_only(people_host: str) -> None:
    login = f"narrow-{uuid.uuid4().hex[:8]}"
    create_person(people_host, login, models=["no-such-model-for-this-person"])
    headers = bearer(sign_in(people_host, login))
    refused = httpx.post(f"{people_host}/v1/chat/completions", json=chat_body("Hi."), headers=headers, timeout=120)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["type"] == "model_not_allowed"
    assert MODEL in refused.json()["error"]["message"]
