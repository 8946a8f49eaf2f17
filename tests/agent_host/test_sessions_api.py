"""Sessions CRUD, and sessions surviving a restart of the host."""

import httpx
from host_support import auth, chat_body, new_session, stored_messages

from procs import ManagedProcess, scaled


def test_sessions_can_be_created_listed_renamed_and_deleted(host: str) -> None:
    session_id = new_session(host, title="first", system_prompt="Be brief.")
    listed = httpx.get(f"{host}/sessions", headers=auth()).json()
    assert session_id in [s["id"] for s in listed]
    renamed = httpx.patch(f"{host}/sessions/{session_id}", json={"title": "renamed"}, headers=auth())
    assert renamed.json()["title"] == "renamed"
    assert renamed.json()["system_prompt"] == "Be brief."
    assert httpx.delete(f"{host}/sessions/{session_id}", headers=auth()).status_code == 204
    assert httpx.get(f"{host}/sessions/{session_id}", headers=auth()).status_code == 404


def test_a_client_may_choose_the_session_id_once(host: str) -> None:
    chosen = "3f1c1d9e-7a55-4c38-9a57-0d6f0c2b9e11"
    assert new_session(host, id=chosen) == chosen
    again = httpx.post(f"{host}/sessions", json={"id": chosen}, headers=auth())
    assert again.status_code == 409 and again.json()["error"]["type"] == "session_exists"


def test_a_restarted_host_keeps_its_sessions(host_process: tuple[ManagedProcess, str]) -> None:
    process, host = host_process
    session_id = new_session(host, title="durable")
    body = chat_body("Hi", session_id=session_id)
    reply = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=scaled(60))
    assert reply.status_code == 200
    process.stop()
    process.start()
    session = httpx.get(f"{host}/sessions/{session_id}", headers=auth()).json()
    assert session["title"] == "durable" and session["message_count"] == 2
    assert len(stored_messages(host, session_id)) == 2
