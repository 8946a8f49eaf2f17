"""The chat UI in agent-host mode: its conversations become host sessions and it reads the context facts."""

from host_support import HOST_KEY, MODEL, stored_messages
from pydantic import SecretStr

from chat_ui.backend import Reply, ensure_host_session, host_session_id, make_client, stream_reply
from chat_ui.config import Settings
from chat_ui.schemas import GenerationParams


def test_a_ui_conversation_streams_through_its_own_host_session_and_shows_context_facts(host: str) -> None:
    settings = Settings(
        litellm_api_key=SecretStr("sk-not-used"),
        agent_host_url=host,
        agent_host_api_key=SecretStr(HOST_KEY),
        runtime_urls=[],
    )
    session_id = ensure_host_session(settings, 424242, "from the UI")
    assert session_id == host_session_id(424242)
    assert ensure_host_session(settings, 424242, "from the UI") == session_id  # idempotent
    params = GenerationParams(model=MODEL, max_tokens=8)
    reply = Reply(params)
    history = [("user", "Hello there")]
    pieces = list(stream_reply(make_client(settings), params, history, reply, session_id=session_id))
    assert reply.error is None and any(pieces)
    facts = reply.facts()
    assert facts.context_window and facts.context_tokens
    assert "context" in facts.line()
    assert [m["role"] for m in stored_messages(host, session_id)] == ["user", "assistant"]
