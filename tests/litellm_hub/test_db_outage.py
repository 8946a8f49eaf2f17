"""PostgreSQL stopped under a running proxy: chats go on, and every request is logged once it is back.

This module has its own PostgreSQL and proxy (with a one-second key cache, so the outage path is
taken on every request), so stopping the database never disturbs the shared fixtures.
"""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from hub_support import MASTER_KEY, bearer, chat_body, create_key, log_rows, start_hub_proxy, wait_for_rows

from procs import ManagedProcess, PostgresInstance, start_postgres


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresInstance]:
    instance = start_postgres()
    yield instance
    instance.remove()


@pytest.fixture(scope="module")
def spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def outage_proxy(
    own_postgres: PostgresInstance, runtimes: tuple[str, str], spool_dir: Path
) -> Iterator[tuple[ManagedProcess, str]]:
    process, base_url = start_hub_proxy(
        own_postgres.url("litellm"), *runtimes, HUB_KEY_CACHE_TTL="1", HUB_SPOOL_DIR=str(spool_dir)
    )
    yield process, base_url
    process.stop()


@pytest.fixture
def http(outage_proxy: tuple[ManagedProcess, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=outage_proxy[1], timeout=120) as client:
        yield client


def chat(http: httpx.Client, key: str, **extra: object) -> httpx.Response:
    response = http.post("/v1/chat/completions", headers=bearer(key), json=chat_body(max_tokens=4, **extra))
    assert response.status_code == 200, response.text
    return response


def duplicated_request_ids(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT request_id FROM hub_request_log GROUP BY 1 HAVING count(*) > 1").fetchall()
    return [row[0] for row in rows]


def test_chats_go_on_while_postgres_is_down_and_their_rows_arrive_after(
    http: httpx.Client, own_postgres: PostgresInstance
) -> None:
    url = own_postgres.url("litellm")
    key = create_key(url, f"outage-{uuid.uuid4().hex[:8]}")
    unused_key = create_key(url, f"unused-{uuid.uuid4().hex[:8]}")
    ids = [chat(http, key).headers["x-litellm-call-id"]]  # the proxy has now seen the key

    own_postgres.stop()
    time.sleep(1.5)  # past the key cache TTL: each check now asks the unreachable database
    ids += [chat(http, key).headers["x-litellm-call-id"] for _ in range(3)]
    with http.stream("POST", "/v1/chat/completions", headers=bearer(key), json=chat_body(stream=True)) as stream:
        assert stream.status_code == 200 and any("data:" in line for line in stream.iter_lines())
        ids.append(stream.headers["x-litellm-call-id"])
    ids.append(chat(http, MASTER_KEY).headers["x-litellm-call-id"])
    unseen = http.post("/v1/chat/completions", headers=bearer(unused_key), json=chat_body())
    assert unseen.status_code == 503  # a key never seen cannot be vouched for without the database
    assert "database is unreachable" in unseen.json()["error"]["message"]

    own_postgres.start()
    rows = wait_for_rows(url, ids, timeout=40)
    assert sorted(rows) == sorted(ids)
    assert all(row["status"] == "success" for row in rows.values())
    assert sum(row["stream"] for row in rows.values()) == 1
    assert duplicated_request_ids(url) == []


def test_rows_buffered_at_shutdown_are_spooled_and_written_at_the_next_start(
    outage_proxy: tuple[ManagedProcess, str], own_postgres: PostgresInstance, spool_dir: Path
) -> None:
    process, base_url = outage_proxy
    url = own_postgres.url("litellm")
    key = create_key(url, f"spool-{uuid.uuid4().hex[:8]}")
    with httpx.Client(base_url=base_url, timeout=120) as http:
        chat(http, key)
        own_postgres.stop()
        ids = [chat(http, key).headers["x-litellm-call-id"] for _ in range(2)]
    process.stop()  # SIGTERM: the proxy exits cleanly while the database is still down

    spool = spool_dir / "hub-usage-spool.jsonl"
    assert spool.exists(), process.log_tail(12)
    assert all(request_id in spool.read_text() for request_id in ids)
    own_postgres.start()
    process.start()  # no request needed: the logger writes the spool as the proxy starts
    rows = wait_for_rows(url, ids, timeout=30)
    assert sorted(rows) == sorted(ids)
    assert not spool.exists()
    assert duplicated_request_ids(url) == []
    assert len(log_rows(url, ids)) == len(ids)
