"""Two proxy instances on one Redis behind HAProxy behave as one proxy: limits, budgets, cache, failures.

Everything is real: redis-server, HAProxy, both LiteLLM processes with the hub, PostgreSQL and the embedded
model. Each test makes keys of its own, so the order of the tests does not matter except for the last two,
which stop Redis and bring it back. An instance killed mid-traffic behind the balancer is
tests/stack/test_proxy_replicas.py's, on `make up`'s own tier.
"""

import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from hub_support import (
    INPUT_COST,
    OUTPUT_COST,
    bearer,
    chat_body,
    create_key,
    priced_config,
    run_keys,
    wait_for_rows,
)

from procs import MASTER_KEY, ManagedProcess, RedisInstance, scaled, start_balancer, start_proxy, start_redis

pytestmark = pytest.mark.timeout(900)


@dataclass
class Tier:
    redis: RedisInstance
    proxies: list[ManagedProcess]
    urls: list[str]
    balancer: str

    def instance(self, index: int) -> httpx.Client:
        return httpx.Client(base_url=self.urls[index], timeout=scaled(120))


@pytest.fixture(scope="module")
def tier(database_url: str, runtimes: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    redis = start_redis()
    config = priced_config(tmp_path_factory.mktemp("scaled"), INPUT_COST, OUTPUT_COST)
    started: list[tuple[ManagedProcess, str]] = []
    balancer: ManagedProcess | None = None
    try:
        # A one-second key cache, so a revocation shows within a test; a quick Redis check; LiteLLM tries Redis
        # again 3 s after an outage instead of its default 60 s. Both start at once: each takes a while.
        env = {
            "HUB_KEY_CACHE_TTL": "1",
            "HUB_REDIS_CHECK_INTERVAL": "0.5",
            "REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "3",
        }
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(start_proxy, MASTER_KEY, database_url, *runtimes, config=config, redis_url=redis.url, **env)
                for _ in range(2)
            ]
            for future in futures:
                started.append(future.result())
        balancer, balancer_url = start_balancer([url for _, url in started])
        yield Tier(redis, [process for process, _ in started], [url for _, url in started], balancer_url)
    finally:
        if balancer is not None:
            balancer.stop()
        for process, _ in started:
            process.stop()
        redis.remove()


def _alternate(tier: Tier, key: str, count: int, **body: Any) -> list[httpx.Response]:
    """`count` chats sent one after another, to instance 0, 1, 0, 1..."""
    clients = [tier.instance(0), tier.instance(1)]
    try:
        return [
            client.post("/v1/chat/completions", headers=bearer(key), json=chat_body(max_tokens=1, **body))
            for client, _ in zip(itertools.cycle(clients), range(count), strict=False)
        ]
    finally:
        for client in clients:
            client.close()


def test_a_key_with_rpm_6_gets_exactly_6_answers_a_minute_across_both_instances(tier: Tier, database_url: str) -> None:
    key = create_key(database_url, f"rpm-{uuid.uuid4().hex[:6]}", "--rpm", "6")
    replies = _alternate(tier, key, 12)
    statuses = [reply.status_code for reply in replies]
    assert statuses.count(200) == 6, statuses
    assert statuses.count(429) == 6, statuses
    # Both instances refused some: the count is shared, not each instance's own 6.
    assert {statuses[i] for i in range(0, 12, 2)} >= {429} and {statuses[i] for i in range(1, 12, 2)} >= {429}


def _spend(database_url: str, key: str) -> float:
    from hub.tokens import hash_key

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT COALESCE(sum(cost), 0) FROM hub_request_log WHERE key_hash = %s", (hash_key(key),)
        ).fetchone()
    return float(row[0]) if row else 0.0


def test_a_budget_is_not_overshot_when_requests_alternate_between_instances(tier: Tier, database_url: str) -> None:
    # One chat of max_tokens 1 costs about (prompt tokens x INPUT_COST + OUTPUT_COST); measure it first.
    probe = create_key(database_url, f"probe-{uuid.uuid4().hex[:6]}")
    first = _alternate(tier, probe, 1)[0]
    assert first.status_code == 200, first.text
    one_chat = (first.json()["usage"]["prompt_tokens"] * INPUT_COST) + OUTPUT_COST
    budget = 3.5 * one_chat
    key = create_key(database_url, f"budget-{uuid.uuid4().hex[:6]}", "--max-budget", f"{budget:.6f}")

    replies = _alternate(tier, key, 10)
    statuses = [reply.status_code for reply in replies]
    answered = statuses.count(200)
    # Requests go one at a time, so at most one is in flight when the budget runs out: 4 chats pass (spend
    # 0, 1, 2, 3 chats < 3.5), never the 8 or more that each instance's own cached spend would let through.
    assert answered == 4, statuses
    assert statuses[:answered] == [200] * answered, statuses
    refused = replies[answered].json()["error"]
    assert "budget" in refused["message"].lower(), refused
    assert _spend(database_url, key) < budget + one_chat


def test_a_revoked_key_stops_working_on_both_instances_within_the_key_cache_ttl(tier: Tier, database_url: str) -> None:
    alias = f"revoke-{uuid.uuid4().hex[:6]}"
    key = create_key(database_url, alias)
    assert [reply.status_code for reply in _alternate(tier, key, 2)] == [200, 200]  # both instances cached it
    assert run_keys(database_url, "revoke", alias).returncode == 0
    time.sleep(scaled(1.5))  # HUB_KEY_CACHE_TTL is 1 s here
    assert [reply.status_code for reply in _alternate(tier, key, 2)] == [401, 401]


def test_a_cached_answer_made_through_one_instance_is_served_by_the_other_and_logged_as_a_hit(
    tier: Tier, database_url: str
) -> None:
    key = create_key(database_url, f"cache-{uuid.uuid4().hex[:6]}")
    body = chat_body(max_tokens=4, temperature=0)
    body["messages"][0]["content"] = f"Name a colour. ({uuid.uuid4().hex[:8]})"  # nobody asked this before
    with tier.instance(0) as first, tier.instance(1) as second:
        miss = first.post("/v1/chat/completions", headers=bearer(key), json=body)
        hit = second.post("/v1/chat/completions", headers=bearer(key), json=body)
        opted_out = second.post("/v1/chat/completions", headers=bearer(key), json={**body, "cache": {"no-cache": True}})
    assert miss.status_code == hit.status_code == opted_out.status_code == 200, (miss.text, hit.text)
    assert not miss.headers.get("x-litellm-cache-key")
    assert hit.headers.get("x-litellm-cache-key")
    assert hit.json()["choices"][0]["message"]["content"] == miss.json()["choices"][0]["message"]["content"]
    assert not opted_out.headers.get("x-litellm-cache-key")

    ids = [reply.headers["x-litellm-call-id"] for reply in (miss, hit, opted_out)]
    rows = wait_for_rows(database_url, ids, timeout=scaled(20))
    assert [rows[i]["cache_hit"] for i in ids] == [False, True, False]
    assert rows[ids[0]]["cost"] > 0 and rows[ids[1]]["cost"] == 0


def test_requests_that_are_not_deterministic_are_never_cached(tier: Tier, database_url: str) -> None:
    key = create_key(database_url, f"nocache-{uuid.uuid4().hex[:6]}")
    body = chat_body(max_tokens=2, temperature=0.8)
    with tier.instance(0) as first, tier.instance(1) as second:
        replies = [client.post("/v1/chat/completions", headers=bearer(key), json=body) for client in (first, second)]
    assert [reply.status_code for reply in replies] == [200, 200]
    assert not any(reply.headers.get("x-litellm-cache-key") for reply in replies)


def test_one_answer_is_never_served_from_another_keys_cache(tier: Tier, database_url: str) -> None:
    body = chat_body(max_tokens=2, temperature=0)
    body["messages"][0]["content"] = f"Count to two. ({uuid.uuid4().hex[:8]})"
    keys = [create_key(database_url, f"ns-{uuid.uuid4().hex[:6]}") for _ in range(2)]
    with tier.instance(0) as client:
        replies = [client.post("/v1/chat/completions", headers=bearer(key), json=body) for key in keys]
    assert [reply.status_code for reply in replies] == [200, 200]
    assert not replies[1].headers.get("x-litellm-cache-key")


def _traffic(url: str, stop: threading.Event, outcomes: list[tuple[float, int]]) -> None:
    with httpx.Client(base_url=url, timeout=scaled(60)) as client:
        while not stop.is_set():
            try:
                status = client.post(
                    "/v1/chat/completions", headers=bearer(MASTER_KEY), json=chat_body(max_tokens=1)
                ).status_code
            except httpx.HTTPError:
                status = 0
            outcomes.append((time.monotonic(), status))


def test_redis_stopped_mid_traffic_chats_go_on_and_the_logs_say_limits_are_per_instance(tier: Tier) -> None:
    stop = threading.Event()
    outcomes: list[tuple[float, int]] = []
    thread = threading.Thread(target=_traffic, args=(tier.balancer, stop, outcomes))
    thread.start()
    try:
        time.sleep(scaled(2))
        tier.redis.stop()
        deadline = time.monotonic() + scaled(30)
        while httpx.get(f"{tier.urls[0]}/health/hub", timeout=5).json()["redis"] != "down":
            assert time.monotonic() < deadline, "the hub never noticed Redis stopped"
            time.sleep(0.3)
        time.sleep(scaled(3))
    finally:
        stop.set()
        thread.join(timeout=scaled(120))
    statuses = [status for _, status in outcomes]
    assert statuses and set(statuses) == {200}, statuses
    health = httpx.get(f"{tier.urls[1]}/health/hub", timeout=5).json()
    assert health["redis"] == "down" and "per instance" in health["limits"], health
    for process in tier.proxies:
        assert "per instance" in process.log_path.read_text(errors="replace")


def test_redis_back_limits_are_shared_again(tier: Tier, database_url: str) -> None:
    if tier.redis.process.proc is None or tier.redis.process.proc.poll() is not None:
        tier.redis.start()
    deadline = time.monotonic() + scaled(30)
    for url in tier.urls:
        # "resuming" first: LiteLLM's circuit breaker waits its recovery time before it uses Redis again.
        while httpx.get(f"{url}/health/hub", timeout=5).json()["redis"] != "shared":
            assert time.monotonic() < deadline, "the hub never saw Redis come back"
            time.sleep(0.3)
    for process in tier.proxies:
        assert "shared again" in process.log_path.read_text(errors="replace")
    key = create_key(database_url, f"rpm-back-{uuid.uuid4().hex[:6]}", "--rpm", "4")
    statuses = [reply.status_code for reply in _alternate(tier, key, 8)]
    assert statuses.count(200) == 4, statuses
