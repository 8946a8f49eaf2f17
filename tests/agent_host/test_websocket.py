"""/ws/chat: token events, a final usage event, error events and cancel."""

import json
from typing import Any

import pytest
from host_support import HOST_KEY, MODEL, new_session, wait_for_messages
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect


def ws_url(host: str) -> str:
    return host.replace("http://", "ws://") + "/ws/chat"


def receive_until(ws: ClientConnection, *kinds: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] not in kinds:
        events.append(json.loads(ws.recv(timeout=60)))
    return events


def test_a_websocket_chat_streams_tokens_then_usage(host: str) -> None:
    with connect(ws_url(host), additional_headers={"Authorization": f"Bearer {HOST_KEY}"}) as ws:
        ws.send(
            json.dumps(
                {"type": "chat", "model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
            )
        )
        events = receive_until(ws, "done", "error")
    kinds = [event["type"] for event in events]
    assert kinds[0] == "context" and "token" in kinds and kinds[-2:] == ["usage", "done"]
    assert events[-2]["usage"]["completion_tokens"] > 0


def test_a_cancelled_websocket_reply_is_stored_as_incomplete(host: str) -> None:
    session_id = new_session(host)
    with connect(ws_url(host), additional_headers={"Authorization": f"Bearer {HOST_KEY}"}) as ws:
        request = {"model": MODEL, "messages": [{"role": "user", "content": "Tell a long story."}], "max_tokens": 400}
        ws.send(json.dumps({"type": "chat", "session_id": session_id, **request}))
        receive_until(ws, "token")
        ws.send(json.dumps({"type": "cancel"}))
        events = receive_until(ws, "cancelled", "done")
    assert events[-1]["type"] == "cancelled"
    messages = wait_for_messages(host, session_id, 2)
    assert messages[1]["incomplete"] is True


def test_websocket_errors_arrive_as_error_events(host: str) -> None:
    with connect(ws_url(host), additional_headers={"Authorization": f"Bearer {HOST_KEY}"}) as ws:
        ws.send(json.dumps({"type": "chat", "model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}))
        unknown = receive_until(ws, "error", "done")[-1]
        ws.send(json.dumps({"type": "chat", "model": MODEL}))
        malformed = receive_until(ws, "error", "done")[-1]
    assert unknown["error"]["type"] == "model_not_found"
    assert malformed["error"]["type"] == "invalid_request"


def test_a_websocket_without_the_key_is_refused(host: str) -> None:
    with pytest.raises(InvalidStatus) as refused, connect(ws_url(host)):
        pass
    assert refused.value.response.status_code == 403
