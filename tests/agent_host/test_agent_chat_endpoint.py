"""`agent: {...}` on /v1/chat/completions: the real host, proxy and smollm2 run a tool and answer."""

import httpx
from host_support import auth, chat_body, new_session, sse_data, stored_messages


def test_streamed_chat_with_an_agent_shows_the_tool_call_its_result_then_the_answer(host: str) -> None:
    body = chat_body("What is 12 times 11?", max_tokens=64, stream=True, agent={"name": "math"})
    with httpx.stream("POST", f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=180) as response:
        assert response.status_code == 200
        events = sse_data(list(response.iter_lines()))
    steps = [event["agent_step"] for event in events if event.get("agent_step")]
    kinds = [step["type"] for step in steps]
    assert kinds[0] == "start" and steps[0]["agent"] == "math"
    call = next(step for step in steps if step["type"] == "tool_call")
    result = next(step for step in steps if step["type"] == "tool_result")
    assert call["name"] == "calculator" and result["id"] == call["id"]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("answer")
    answer = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    assert answer.strip()
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_chat_with_an_agent_returns_every_step_beside_the_answer(host: str) -> None:
    body = chat_body("What is 7 times 8?", max_tokens=64, agent={"name": "math"})
    response = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=180)
    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["agent"] == "math"
    results = [step for step in completion["agent_steps"] if step["type"] == "tool_result"]
    assert results and not results[0]["is_error"]
    assert completion["choices"][0]["message"]["content"].strip()


def test_chat_with_an_unknown_agent_is_refused_before_anything_runs(host: str) -> None:
    body = chat_body("Hello", stream=True, agent={"name": "no-such-agent"})
    response = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=30)
    assert response.status_code == 404
    assert "no-such-agent" in response.json()["error"]["message"]


def test_chat_with_malformed_agent_options_is_a_client_error(host: str) -> None:
    body = chat_body("Hello", agent={"max_steps": 0})
    response = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=30)
    assert response.status_code == 400
    assert "agent options" in response.json()["error"]["message"]


def test_an_agent_turn_in_a_session_joins_the_session_history(host: str) -> None:
    session = new_session(host)
    body = chat_body("What is 9 times 9?", max_tokens=64, agent={"name": "math"}, session_id=session)
    response = httpx.post(f"{host}/v1/chat/completions", json=body, headers=auth(), timeout=180)
    assert response.status_code == 200, response.text
    answer = response.json()["choices"][0]["message"]["content"]
    stored = stored_messages(host, session)
    assert [(m["role"], m["content"]) for m in stored] == [("user", "What is 9 times 9?"), ("assistant", answer)]
    assert all(m["tokens"] > 0 for m in stored)


def test_an_agent_run_told_not_to_remember_leaves_the_session_history_alone(host: str) -> None:
    session = new_session(host)
    body = {"task": "What is 5 times 5?", "agent": "math", "session_id": session, "remember": False}
    response = httpx.post(f"{host}/agents/run", json=body, headers=auth(), timeout=180)
    assert response.status_code == 200, response.text
    assert response.json()["answer"]
    assert stored_messages(host, session) == []
