"""/ws/chat: token events, a final usage event, error events and cancel."""

import json
from typing import Any

import pytest
from host_support import HOST_KEY, MODEL, new_session, wait_for_messages
from websockets.exceptions import ConnectionClosed, InvalidStatus
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


def test_the_websocket_takes_the_key_from_the_query_string(host: str) -> None:
    with connect(f"{ws_url(host)}?api_key={HOST_KEY}") as ws:
        ws.send(json.dumps({"type": "chat", "model": MODEL}))
        event = receive_until(ws, "error", "done")[-1]
    assert event["error"]["type"] == "invalid_request"


def test_a_frame_that_is_not_json_gets_an_error_event_and_the_socket_stays_open(host: str) -> None:
    with connect(ws_url(host), additional_headers={"Authorization": f"Bearer {HOST_KEY}"}) as ws:
        ws.send("{not json")
        first = receive_until(ws, "error")[-1]
        ws.send(json.dumps({"type": "chat", "model": MODEL}))
        second = receive_until(ws, "error")[-1]
    assert first["error"] == {"type": "invalid_request", "message": "a message is not JSON"}
    assert second["error"]["type"] == "invalid_request"


def test_a_client_flooding_chat_messages_is_closed_with_1008(host: str) -> None:
    events: list[dict[str, Any]] = []
    with connect(ws_url(host), additional_headers={"Authorization": f"Bearer {HOST_KEY}"}) as ws:
        request = {"model": MODEL, "messages": [{"role": "user", "content": "Tell a long story."}], "max_tokens": 400}
        ws.send(json.dumps({"type": "chat", **request}))
        receive_until(ws, "token")  # a turn is running: what follows waits in the inbox
        for _ in range(50):
            ws.send(json.dumps({"type": "chat", **request}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                events.append(json.loads(ws.recv(timeout=60)))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "too_many_messages"


def test_a_message_over_the_size_limit_closes_the_socket_with_1009(host: str) -> None:
    with connect(ws_url(host), additional_headers={"Authorization": f"Bearer {HOST_KEY}"}, max_size=None) as ws:
        ws.send(
            json.dumps({"type": "chat", "model": MODEL, "messages": [{"role": "user", "content": "x" * 1_100_000}]})
        )
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=60)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
