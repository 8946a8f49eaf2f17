"""One history over HTTP: a real host (its proxy a scripted fake model) whose edits, deletes, truncations and
regenerations leave exactly the expected stored messages, which are exactly what the model is sent."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from account_support import bearer, signed_in
from agent_support import ScriptedModel, say
from host_support import sse_data, start_host
from websockets.sync.client import connect

from procs import PostgresInstance

MODEL = "fake-model"


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[ScriptedModel, str]]:
    scripted = ScriptedModel([])
    with scripted.serving() as url:
        yield scripted, url


@pytest.fixture(scope="module")
def host(model: tuple[ScriptedModel, str], postgres: PostgresInstance) -> Iterator[str]:
    process, url = start_host(model[1].removesuffix("/v1"), postgres.url("genailabs"), "fake-key")
    yield url
    process.stop()


@pytest.fixture(scope="module")
def token(host: str, postgres: PostgresInstance) -> str:
    return signed_in(postgres.url("genailabs"), "history")[1]


class Client:
    """The person's calls to the host, and what the scripted model was sent."""

    def __init__(self, host: str, token: str, model: ScriptedModel) -> None:
        self.http = httpx.Client(base_url=host, headers=bearer(token), timeout=60)
        self.model = model

    def new_session(self) -> str:
        response = self.http.post("/sessions", json={"title": "one history"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def chat(self, session_id: str, content: str | None, answer: str, stream: bool = False) -> httpx.Response:
        """A turn (or with `content` None a regeneration) the scripted model answers with `answer`."""
        self.model.script([say(answer)])
        body: dict[str, Any] = {"model": MODEL, "session_id": session_id, "max_tokens": 16, "stream": stream}
        if content is None:
            body["regenerate"] = True
        else:
            body["messages"] = [{"role": "user", "content": content}]
        response = self.http.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        return response

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/sessions/{session_id}/messages")
        assert response.status_code == 200, response.text
        return list(response.json())

    def sent(self) -> list[dict[str, Any]]:
        """The conversation the model was last sent (system messages aside)."""
        return [
            {"role": m["role"], "content": m["content"]}
            for m in self.model.requests[-1]["messages"]
            if m["role"] != "system"
        ]


@pytest.fixture
def client(host: str, token: str, model: tuple[ScriptedModel, str]) -> Iterator[Client]:
    client = Client(host, token, model[0])
    yield client
    client.http.close()


def shown(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def test_an_edit_then_truncate_and_regenerate_answer_exactly_the_stored_history(client: Client) -> None:
    session_id = client.new_session()
    client.chat(session_id, "My cat is called Tom.", "Nice name.")
    client.chat(session_id, "What is my cat called?", "Tom.")
    first, _, question, _ = client.messages(session_id)

    edited = client.http.patch(f"/sessions/{session_id}/messages/{first['id']}", json={"content": "My cat is Felix."})
    assert edited.status_code == 200, edited.text
    assert edited.json()["content"] == "My cat is Felix." and edited.json()["tokens"] > 0
    truncated = client.http.delete(f"/sessions/{session_id}/messages", params={"after": question["id"]})
    assert truncated.status_code == 204
    kept = shown(client.messages(session_id))
    assert kept == [
        {"role": "user", "content": "My cat is Felix."},
        {"role": "assistant", "content": "Nice name."},
        {"role": "user", "content": "What is my cat called?"},
    ]

    reply = client.chat(session_id, None, "Felix.")
    assert reply.json()["choices"][0]["message"]["content"] == "Felix."
    assert client.sent() == kept  # the model saw what is stored, the question once
    after = client.messages(session_id)
    assert shown(after) == [*kept, {"role": "assistant", "content": "Felix."}]
    assert after[-1]["metadata"]["context"]["session_id"] == session_id
    assert after[0]["metadata"] == {}


def test_a_streamed_regeneration_stores_one_new_answer(client: Client) -> None:
    session_id = client.new_session()
    client.chat(session_id, "Name a colour.", "Red.")
    _, answer = client.messages(session_id)
    assert client.http.delete(f"/sessions/{session_id}/messages/{answer['id']}").status_code == 204
    events = sse_data(client.chat(session_id, None, "Blue.", stream=True).text.splitlines())
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")) == "Blue."
    assert client.sent() == [{"role": "user", "content": "Name a colour."}]
    assert shown(client.messages(session_id)) == [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
    ]


def test_a_deleted_message_is_not_sent_to_the_model_again(client: Client) -> None:
    session_id = client.new_session()
    client.chat(session_id, "My secret is 42.", "Noted.")
    client.chat(session_id, "I like tea.", "Tea is nice.")
    secret = client.messages(session_id)[0]
    assert client.http.delete(f"/sessions/{session_id}/messages/{secret['id']}").status_code == 204
    client.chat(session_id, "What do I like?", "Tea.")
    assert client.sent() == [
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "I like tea."},
        {"role": "assistant", "content": "Tea is nice."},
        {"role": "user", "content": "What do I like?"},
    ]
    assert shown(client.messages(session_id))[:-1] == client.sent()


def test_bad_edits_are_refused_and_change_nothing(client: Client) -> None:
    session_id = client.new_session()
    client.chat(session_id, "Hello.", "Hi.")
    question, answer = client.messages(session_id)
    path = f"/sessions/{session_id}/messages"
    refusals = {
        "empty content": (client.http.patch(f"{path}/{question['id']}", json={"content": ""}), 422),
        "an unknown field": (client.http.patch(f"{path}/{question['id']}", json={"content": "x", "role": "x"}), 422),
        "a NUL character": (client.http.patch(f"{path}/{question['id']}", json={"content": "a\u0000b"}), 422),
        "no such message": (client.http.patch(f"{path}/999999999", json={"content": "x"}), 404),
        "a huge message id": (client.http.delete(f"{path}/{2**70}"), 422),
        "after nothing": (client.http.delete(path, params={"after": 0}), 422),
        "after no such message": (client.http.delete(path, params={"after": 999999999}), 404),
        "over the body limit": (client.http.patch(f"{path}/{question['id']}", json={"content": "x" * 1_100_000}), 413),
    }
    for what, (response, status) in refusals.items():
        assert response.status_code == status, (what, response.text)
    regenerate = {"model": MODEL, "session_id": session_id, "regenerate": True}
    answered = client.http.post("/v1/chat/completions", json=regenerate)
    assert answered.status_code == 409 and answered.json()["error"]["type"] == "nothing_to_regenerate"
    for body in (
        {"model": MODEL, "regenerate": True},
        {**regenerate, "messages": [{"role": "user", "content": "new"}]},
        {"model": MODEL, "session_id": session_id},
    ):
        assert client.http.post("/v1/chat/completions", json=body).status_code == 422, body
    assert shown(client.messages(session_id)) == shown([question, answer])


def test_a_websocket_regeneration_answers_the_stored_history(client: Client, host: str, token: str) -> None:
    session_id = client.new_session()
    client.chat(session_id, "Say something.", "Something.")
    _, answer = client.messages(session_id)
    assert client.http.delete(f"/sessions/{session_id}/messages/{answer['id']}").status_code == 204
    client.model.script([say("Something else.")])
    url = host.replace("http://", "ws://") + "/ws/chat"
    with connect(url, additional_headers=bearer(token)) as ws:
        ws.send(json.dumps({"type": "chat", "model": MODEL, "session_id": session_id, "regenerate": True}))
        events = [json.loads(ws.recv(timeout=60))]
        while events[-1]["type"] not in ("done", "error"):
            events.append(json.loads(ws.recv(timeout=60)))
    assert events[-1]["type"] == "done", events
    assert "".join(e["content"] for e in events if e["type"] == "token") == "Something else."
    assert client.sent() == [{"role": "user", "content": "Say something."}]
    assert shown(client.messages(session_id)) == [
        {"role": "user", "content": "Say something."},
        {"role": "assistant", "content": "Something else."},
    ]
