"""Every bad input and fault gets a clear status and the `{"error": {...}}` body."""

import subprocess
from collections.abc import Iterator

import httpx
import pytest
from host_support import HOST_KEY, auth, chat_body, new_session, shared_master_key, start_host, stored_messages

from devstack.probe import free_port
from procs import PYTHON, ManagedProcess, PostgresInstance, scaled, start_proxy


def error_of(response: httpx.Response) -> dict[str, str]:
    return dict(response.json()["error"])


def test_health_needs_no_key_but_everything_else_does(host: str) -> None:
    assert httpx.get(f"{host}/health").status_code == 200
    for method, path in [("GET", "/v1/models"), ("GET", "/sessions"), ("POST", "/v1/chat/completions")]:
        response = httpx.request(method, f"{host}{path}", json=chat_body("hi"))
        assert response.status_code == 401, path
        assert error_of(response)["type"] == "unauthorized"


def test_a_wrong_key_is_refused(host: str) -> None:
    response = httpx.get(f"{host}/sessions", headers={"Authorization": "Bearer sk-wrong"})
    assert response.status_code == 401
    assert HOST_KEY not in response.text


def test_readiness_checks_the_proxy_and_the_database(host: str) -> None:
    response = httpx.get(f"{host}/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"proxy": "ok", "database": "ok"}


def test_a_malformed_body_is_422(host: str) -> None:
    missing = httpx.post(f"{host}/v1/chat/completions", json={"model": "smollm2:135m"}, headers=auth())
    assert missing.status_code == 422
    assert "messages" in error_of(missing)["message"]
    broken = httpx.post(
        f"{host}/v1/chat/completions", content=b"{not json", headers={**auth(), "content-type": "application/json"}
    )
    assert broken.status_code == 422


def test_an_unknown_session_is_404_everywhere(host: str) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    for method, path in [
        ("GET", f"/sessions/{unknown}"),
        ("PATCH", f"/sessions/{unknown}"),
        ("DELETE", f"/sessions/{unknown}"),
        ("GET", f"/sessions/{unknown}/messages"),
        ("GET", "/sessions/not-a-uuid"),
    ]:
        response = httpx.request(method, f"{host}{path}", json={"title": "x"}, headers=auth())
        assert response.status_code == 404, path
        assert error_of(response)["type"] == "session_not_found"
    chat = httpx.post(f"{host}/v1/chat/completions", json=chat_body("hi", session_id=unknown), headers=auth())
    assert chat.status_code == 404


def test_an_unknown_model_is_404(host: str) -> None:
    response = httpx.post(
        f"{host}/v1/chat/completions", json={**chat_body("hi"), "model": "no-such-model:1b"}, headers=auth()
    )
    assert response.status_code == 404
    assert error_of(response)["type"] == "model_not_found"
    assert "no-such-model:1b" in error_of(response)["message"]


def test_a_body_over_the_limit_is_413(host: str) -> None:
    response = httpx.post(f"{host}/v1/chat/completions", json=chat_body("x" * 1_100_000), headers=auth())
    assert response.status_code == 413
    assert error_of(response)["type"] == "request_too_large"


def test_a_message_too_long_for_the_window_is_refused_before_reaching_the_model(host: str) -> None:
    response = httpx.post(f"{host}/v1/chat/completions", json=chat_body("apple " * 3000), headers=auth(), timeout=30)
    assert response.status_code == 400
    assert error_of(response)["type"] == "context_length_exceeded"


@pytest.fixture
def host_without_proxy(postgres: PostgresInstance) -> Iterator[str]:
    process, url = start_host(f"http://127.0.0.1:{free_port()}", postgres.url("genailabs"), "sk-unused")
    yield url
    process.stop()


def test_proxy_down_is_503_and_nothing_is_stored(host_without_proxy: str) -> None:
    session_id = new_session(host_without_proxy)
    for stream in (False, True):
        body = chat_body("hi", session_id=session_id, stream=stream)
        response = httpx.post(f"{host_without_proxy}/v1/chat/completions", json=body, headers=auth(), timeout=30)
        assert response.status_code == 503
        assert error_of(response)["type"] == "proxy_unavailable"
        assert "proxy" in error_of(response)["message"]
    assert stored_messages(host_without_proxy, session_id) == []
    assert httpx.get(f"{host_without_proxy}/health/ready").status_code == 503


@pytest.fixture
def host_without_database(proxy: str) -> Iterator[str]:
    dead_db = f"postgresql://litellm:litellm@127.0.0.1:{free_port()}/genailabs"
    process, url = start_host(proxy, dead_db, shared_master_key())
    yield url
    process.stop()


def test_database_down_still_chats_without_the_session_and_says_so(host_without_database: str) -> None:
    body = chat_body("hi", session_id="00000000-0000-0000-0000-000000000001")
    response = httpx.post(f"{host_without_database}/v1/chat/completions", json=body, headers=auth(), timeout=60)
    assert response.status_code == 200
    assert "database unavailable" in response.headers["x-context-warning"]
    assert response.json()["context"]["session_stored"] is False
    sessions = httpx.get(f"{host_without_database}/sessions", headers=auth(), timeout=30)
    assert sessions.status_code == 503
    assert error_of(sessions)["type"] == "database_unavailable"


def test_a_missing_setting_stops_start_up_with_one_readable_line() -> None:
    process = ManagedProcess("bad", [PYTHON, "-m", "agent_host"], health=lambda: None)
    env = {"PATH": "/usr/bin:/bin", "AGENT_HOST_PROXY_KEY": "sk-x"}
    result = subprocess.run(process.argv, env=env, capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "AGENT_HOST_API_KEY" in result.stderr


@pytest.fixture
def host_with_own_proxy(postgres: PostgresInstance, runtimes: tuple[str, str]) -> Iterator[tuple[ManagedProcess, str]]:
    proxy, proxy_url = start_proxy(shared_master_key(), postgres.url("litellm"), *runtimes)
    host, url = start_host(proxy_url, postgres.url("genailabs"), shared_master_key())
    yield proxy, url
    host.stop()
    proxy.stop()


def test_a_proxy_that_dies_after_warm_up_still_gives_503_and_stores_nothing(
    host_with_own_proxy: tuple[ManagedProcess, str],
) -> None:
    proxy, host = host_with_own_proxy
    session_id = new_session(host)
    body = chat_body("hi", session_id=session_id)
    warm = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=scaled(120))
    assert warm.status_code == 200
    proxy.stop()
    for stream in (False, True):
        body = chat_body("again", session_id=session_id, stream=stream)
        response = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=30)
        assert response.status_code == 503, response.text
        assert error_of(response)["type"] == "proxy_unavailable"
    assert len(stored_messages(host, session_id)) == 2


@pytest.mark.parametrize("limit", ["-65", "0", "1001", "many"])
def test_a_session_list_limit_out_of_bounds_is_422(host: str, limit: str) -> None:
    response = httpx.get(f"{host}/sessions", params={"limit": limit}, headers=auth())
    assert response.status_code == 422, response.text
    assert error_of(response)["type"] == "invalid_request"
    assert "limit" in error_of(response)["message"]


@pytest.mark.parametrize(
    "body",
    [{"colour": "blue"}, {"title": "x", "unknown": 1}, {"title": None}, {"collections": None}, {"title": "a\x00b"}],
)
def test_a_session_update_with_unknown_fields_or_nulls_is_422(host: str, body: dict[str, object]) -> None:
    session_id = new_session(host, title="kept")
    response = httpx.patch(f"{host}/sessions/{session_id}", json=body, headers=auth())
    assert response.status_code == 422, response.text
    assert error_of(response)["type"] == "invalid_request"
    assert httpx.get(f"{host}/sessions/{session_id}", headers=auth()).json()["title"] == "kept"


def test_a_session_created_with_a_nul_character_is_422(host: str) -> None:
    response = httpx.post(f"{host}/sessions", json={"system_prompt": "be brief\x00"}, headers=auth())
    assert response.status_code == 422, response.text
    assert "NUL" in error_of(response)["message"]


@pytest.mark.parametrize(
    "content",
    [
        [{}],
        [{"type": "text"}],
        [{"type": "text", "text": 5}],
        [{"type": "image_url", "image_url": {}}],
        [{"type": "no-such-part", "text": "x"}],
        ["just a string in a list"],
    ],
)
def test_malformed_content_parts_are_422_before_reaching_the_proxy(host: str, content: list[object]) -> None:
    body = {**chat_body("x"), "messages": [{"role": "user", "content": content}]}
    response = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=30)
    assert response.status_code == 422, response.text
    assert error_of(response)["type"] == "invalid_request"
    assert "litellm" not in response.text.lower()


@pytest.mark.parametrize(
    "change",
    [
        {"frobnicate": 1},  # OpenAI answers an unknown argument with a 400; the host with a 422
        {"temperature": 5},
        {"n": 3},
        {"messages": [{"role": "user"}]},
        {"messages": [{"role": "user", "content": "x", "colour": "blue"}]},
        {"messages": [{"role": "tool", "content": "42"}]},
        {"messages": [{"role": "user", "content": "x", "tool_call_id": "call-1"}]},
    ],
)
def test_unknown_fields_and_messages_that_break_openais_rules_are_422(host: str, change: dict[str, object]) -> None:
    response = httpx.post(f"{host}/v1/chat/completions", json={**chat_body("x"), **change}, headers=auth(), timeout=30)
    assert response.status_code == 422, response.text
    assert error_of(response)["type"] == "invalid_request"


def test_a_lone_surrogate_in_a_message_is_422(host: str) -> None:
    raw = b'{"model": "smollm2:135m", "messages": [{"role": "user", "content": "lone \\ud800 surrogate"}]}'
    headers = {**auth(), "content-type": "application/json"}
    response = httpx.post(f"{host}/v1/chat/completions", content=raw, headers=headers, timeout=30)
    assert response.status_code == 422, response.text
    assert "Unicode" in error_of(response)["message"]


def test_well_formed_content_parts_still_chat(host: str) -> None:
    body = {**chat_body("x"), "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hi."}]}]}
    response = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=60)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("method", "path"), [("GET", "/sessions"), ("GET", "/v1/models"), ("GET", "/rag/collections")])
def test_a_key_in_the_query_string_is_refused_on_http_routes(host: str, method: str, path: str) -> None:
    response = httpx.request(method, f"{host}{path}", params={"api_key": HOST_KEY})
    assert response.status_code == 401
    assert error_of(response)["type"] == "unauthorized"
    assert "Authorization" in error_of(response)["message"] and "/ws/chat" in error_of(response)["message"]
    with_header_too = httpx.request(method, f"{host}{path}", params={"api_key": HOST_KEY}, headers=auth())
    assert with_header_too.status_code == 401
