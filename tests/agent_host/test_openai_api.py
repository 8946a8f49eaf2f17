"""The openai SDK works unchanged against the agent host, with sessions riding in extra body fields."""

import httpx
from host_support import MODEL, auth, chat_body, new_session, sse_data, stored_messages, wait_for_messages
from openai import OpenAI


def test_sdk_completes_a_chat_without_streaming(sdk: OpenAI) -> None:
    reply = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8)
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert (reply.model_extra or {})["context"]["window"] > 0


def test_sdk_streams_a_chat(sdk: OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count to three."}], max_tokens=12, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text


def test_models_are_the_proxys_chat_models(sdk: OpenAI, proxy: str) -> None:
    from host_support import shared_master_key

    master = {"Authorization": f"Bearer {shared_master_key()}"}
    direct = httpx.get(f"{proxy}/v1/models", headers=master).json()
    info = httpx.get(f"{proxy}/v1/model/info", headers=master).json()
    embedding = {entry["model_name"] for entry in info["data"] if entry["model_info"].get("mode") == "embedding"}
    assert embedding == {"all-minilm"}  # the repo's config has one embedding group; a chat cannot use it
    assert sorted(model.id for model in sdk.models.list()) == sorted(
        model["id"] for model in direct["data"] if model["id"] not in embedding
    )


def test_a_session_stores_the_turn_and_the_reply_and_frames_the_next_turn(sdk: OpenAI, host: str) -> None:
    session_id = new_session(host, title="remember")
    first = sdk.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "My name is Ada."}],
        max_tokens=8,
        extra_body={"session_id": session_id},
    )
    assert first.headers["x-session-id"] == session_id
    second = sdk.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is my name?"}],
        max_tokens=8,
        extra_body={"session_id": session_id},
    )
    assert second.headers["x-context-history-messages"] == "2"
    messages = stored_messages(host, session_id)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "My name is Ada."
    assert not any(m["incomplete"] for m in messages)


def test_a_streamed_reply_is_stored_with_its_session(sdk: OpenAI, host: str) -> None:
    session_id = new_session(host)
    stream = sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=8,
        stream=True,
        extra_body={"session_id": session_id},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    messages = wait_for_messages(host, session_id, 2)
    assert messages[1] == {**messages[1], "role": "assistant", "content": text, "incomplete": False}


def test_a_client_leaving_mid_stream_leaves_the_partial_reply_stored_and_marked_incomplete(host: str) -> None:
    session_id = new_session(host)
    body = chat_body("Write a long story about a dragon.", max_tokens=400, stream=True, session_id=session_id)
    with httpx.stream("POST", f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if sse_data([line]) and sse_data([line])[0]["choices"][0]["delta"].get("content"):
                break
    messages = wait_for_messages(host, session_id, 2)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["incomplete"] is True


def test_stream_usage_is_sent_only_when_the_client_asks(host: str) -> None:
    body = chat_body("Hi", max_tokens=8, stream=True, stream_options={"include_usage": True})
    with httpx.stream("POST", f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=60) as response:
        events = sse_data(list(response.iter_lines()))
    assert any(event.get("usage") for event in events)
