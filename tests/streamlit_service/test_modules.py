"""The modules behind the page: streaming and Stop, export, titles, the usage queries (the pages: test_signin_pages)."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from fake_model_server import FakeModelServer, Script

from chat_ui.backend import Reply, chat_client, clean_title, stream_reply
from chat_ui.config import get_settings
from chat_ui.export import to_json, to_markdown
from chat_ui.people import Credentials
from chat_ui.schemas import Conversation, Facts, GenerationParams, Message
from chat_ui.usage import latency_percentiles, usage_per_day
from procs import PostgresInstance, scaled


def client():  # type: ignore[no-untyped-def]
    settings = get_settings()
    return chat_client(settings, Credentials(settings.litellm_api_key.get_secret_value(), {}))


def test_stop_closes_the_stream_so_the_server_stops_generating(ui_env: FakeModelServer) -> None:
    ui_env.script = Script(pieces=[f" w{i}" for i in range(200)], delay=0.02)
    params = GenerationParams(model="smollm2:135m")
    reply = Reply(params)
    pieces = stream_reply(client(), [{"role": "user", "content": "long answer please"}], reply)
    received = [piece for piece, _ in zip((p for p in pieces if p), range(5), strict=False)]
    pieces.close()  # what the page does when Stop reruns the script
    deadline = time.monotonic() + scaled(5)
    while ui_env.disconnects == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(received) == 5 and reply.stopped
    assert ui_env.disconnects == 1 and ui_env.finished_streams == 0
    assert reply.facts().stopped and reply.facts().ttft_ms is not None


def test_streamed_pieces_arrive_one_by_one(ui_env: FakeModelServer) -> None:
    ui_env.script = Script(pieces=["a", "b", "c"], delay=0.05)
    reply = Reply(GenerationParams(model="smollm2:135m"))
    pieces = [p for p in stream_reply(client(), [{"role": "user", "content": "x"}], reply) if p]
    assert pieces == ["a", "b", "c"] and reply.text == "abc" and not reply.stopped


def test_facts_compute_tokens_per_second_from_the_generation_time() -> None:
    facts = Facts(model="m", tokens_in=10, tokens_out=20, ttft_ms=100, total_ms=1100)
    assert facts.tokens_per_s == pytest.approx(20.0)
    assert "20.0 tok/s" in facts.line() and "TTFT 100 ms" in facts.line()


def test_facts_say_cached_for_an_answer_from_the_proxy_cache_and_keep_it_beside_the_hosts_context() -> None:
    assert "cached" in Facts(model="m", cached=True).line()
    assert "cached" not in Facts(model="m").line()
    measured = Facts(model="m", total_ms=5).with_context_of(Facts(context_window=8192, cached=True))
    assert measured.cached and "cached" in measured.line()


def test_titles_are_cleaned_and_rambling_is_refused() -> None:
    assert clean_title('"Python lists"\n') == "Python lists"
    assert clean_title("Title: Sorting in Go") == "Sorting in Go"
    assert clean_title("word " * 20) is None


def test_export_as_markdown_and_json_holds_every_message() -> None:
    now = datetime.now(UTC)
    conversation = Conversation(
        id="7",
        title="Lists",
        params=GenerationParams(model="m", system_prompt="Be brief."),
        created_at=now,
        updated_at=now,
    )
    messages = [
        Message(id=1, role="user", content="How?", created_at=now),
        Message(id=2, role="assistant", content="`x[::-1]`", created_at=now, facts=Facts(model="m", total_ms=5)),
    ]
    markdown = to_markdown(conversation, messages)
    assert markdown.startswith("# Lists") and "## You\n\nHow?" in markdown and "`x[::-1]`" in markdown
    document = json.loads(to_json(conversation, messages))
    assert [m["content"] for m in document["messages"]] == ["How?", "`x[::-1]`"]
    assert document["params"]["system_prompt"] == "Be brief."


@pytest.fixture
def request_log(postgres: PostgresInstance) -> str:
    hub_schema = pytest.importorskip("hub.schema")
    import psycopg

    url = postgres.url("litellm")
    with psycopg.connect(url, autocommit=True) as conn:
        hub_schema.HUB_MIGRATIONS.migrate(conn)
        conn.execute("DELETE FROM hub_request_log WHERE request_id LIKE 'ui-test-%'")
        now = datetime.now(UTC)
        for i in range(10):
            started = now - timedelta(days=i % 2, minutes=i)
            conn.execute(
                "INSERT INTO hub_request_log (request_id, started_at, ended_at, model_group, prompt_tokens, "
                "completion_tokens, latency_ms, ttft_ms, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (f"ui-test-{i}", started, started, "smollm2:135m", 10, 5, 100.0 * (i + 1), 20.0, "success"),
            )
    return url


def test_usage_counts_requests_and_tokens_per_model_and_day(request_log: str) -> None:
    per_day = usage_per_day(request_log, 7)
    ours = per_day[per_day["model"] == "smollm2:135m"]
    assert ours["requests"].sum() >= 10 and ours["day"].nunique() == 2
    latency = latency_percentiles(request_log, 7).set_index("model")
    assert latency.loc["smollm2:135m", "p50_ms"] > 0
