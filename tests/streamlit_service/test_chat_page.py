"""The chat page, driven by AppTest against a scripted fake model and the real history database."""

import pytest
from fake_model_server import FakeModelServer, Script
from ui_support import open_page, send, texts

from chat_ui.config import get_settings
from chat_ui.people import SignedIn
from chat_ui.store import LocalHistory
from genailabs_accounts.store import AccountStore
from procs import UI_PASSWORD, PostgresInstance, ensure_account


@pytest.fixture
def history(person: SignedIn) -> LocalHistory:
    """The signed-in person's conversations, read as the page reads them."""
    return LocalHistory(get_settings().database_url.get_secret_value(), str(person.account.id))


def test_model_dropdown_marks_models_no_runtime_has_as_unavailable(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    app = open_page(person)
    picker = app.selectbox[0]
    assert picker.options[0] == "smollm2:135m"
    assert "qwen2.5:0.5b (unavailable: no runtime has it)" in picker.options
    assert not app.exception


def test_model_failing_the_proxy_health_check_is_marked_unavailable(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    ui_env.healthy = []
    app = open_page(person)
    assert "smollm2:135m (unavailable: failing its health check)" in app.selectbox[0].options


def test_sending_a_message_streams_the_answer_and_keeps_both_in_postgres(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    app = send(open_page(person), "Hi there")
    assert "Hello from the fake model." in texts(app)
    conversation = history.summaries()[0]
    messages = history.messages(conversation.id)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "Hi there"),
        ("assistant", "Hello from the fake model."),
    ]
    facts = messages[1].facts
    assert facts is not None and facts.model == "smollm2:135m"
    assert (facts.tokens_in, facts.tokens_out) == (12, 5)
    assert facts.ttft_ms is not None and facts.total_ms >= facts.ttft_ms
    request = ui_env.requests[0]
    assert request["stream"] is True and request["max_tokens"] == 512 and request["model"] == "smollm2:135m"


def test_first_exchange_names_the_conversation_by_the_model(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    send(open_page(person), "Hi there")
    assert history.summaries()[0].title == "Greeting the fake model"


def test_title_falls_back_to_the_first_words_when_the_model_rambles(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    ui_env.title = "Sure! Here is a title for you. " * 10
    send(open_page(person), "How do I reverse a list in Python quickly please")
    assert history.summaries()[0].title == "How do I reverse a list…"


def test_conversation_survives_a_restart_of_the_page(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    send(open_page(person), "Remember me")
    conversation = history.summaries()[0]
    reopened = open_page(person)
    assert reopened.button(key=f"open-{conversation.id}").label == conversation.title
    reopened.button(key=f"open-{conversation.id}").click().run()
    assert "Remember me" in texts(reopened)
    assert reopened.query_params["c"] == [str(conversation.id)] or reopened.query_params["c"] == str(conversation.id)


def test_system_prompt_and_controls_are_kept_per_conversation(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    app = open_page(person)
    app.text_area(key="system-None").set_value("Answer in French.")
    app.number_input(key="max_tokens-None").set_value(32)
    app = send(app.run(), "Bonjour")
    assert ui_env.requests[0]["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert ui_env.requests[0]["max_tokens"] == 32
    conversation = history.get(history.summaries()[0].id)
    assert conversation is not None and conversation.params.max_tokens == 32
    app.button(key="new-chat").click().run()
    assert app.number_input(key="max_tokens-None").value == 32  # a new chat starts from the last draft


def test_rename_then_delete_after_confirming(ui_env: FakeModelServer, person: SignedIn, history: LocalHistory) -> None:
    app = send(open_page(person), "Hi")
    cid = history.summaries()[0].id
    app.text_input(key=f"title-{cid}").set_value("My renamed chat").run()
    assert history.summaries()[0].title == "My renamed chat"
    app.button(key="delete-chat").click().run()
    assert history.summaries(), "nothing is deleted before the confirmation"
    app.button(key="confirm-delete").click().run()
    assert history.summaries() == []


def test_search_finds_conversations_by_message_text(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    send(open_page(person), "Tell me about penguins")
    send(open_page(person), "Tell me about volcanoes")
    app = open_page(person)
    app.text_input(key="search").set_value("volcano").run()
    labels = [b.label for b in app.button if b.key and b.key.startswith("open-")]
    assert len(labels) == 1


def test_regenerate_replaces_the_last_answer(ui_env: FakeModelServer, person: SignedIn, history: LocalHistory) -> None:
    app = send(open_page(person), "Hi")
    ui_env.script = Script(pieces=["Second", " answer"])
    app.button(key="regenerate").click().run()
    messages = history.messages(history.summaries()[0].id)
    assert [m.content for m in messages] == ["Hi", "Second answer"]


def test_edit_and_resend_the_last_user_message(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    app = send(open_page(person), "Hi")
    user_id = history.messages(history.summaries()[0].id)[0].id
    app.text_area(key=f"edit-{user_id}").set_value("Hello, edited")
    app.button(key="send-edited").click().run()
    messages = history.messages(history.summaries()[0].id)
    assert [m.content for m in messages] == ["Hello, edited", "Hello from the fake model."]
    streamed = [request for request in ui_env.requests if request.get("stream")]
    assert streamed[-1]["messages"][-1]["content"] == "Hello, edited"


ERRORS = {
    "wrong key": (401, {"error": {"message": "invalid API key sk-...x: no such key"}}, "rejected the UI's API key"),
    "model not allowed": (403, {"error": {"message": "API key 'a' may not use model"}}, "may not use model"),
    "rate limit": (429, {"error": {"message": "rpm limit"}}, "Rate limit reached"),
    "budget": (400, {"error": {"message": "budget exceeded for API key 'a'", "type": "budget_exceeded"}}, "budget"),
    # The agent host's answer to a person's spent budget is a 429 (as OpenAI's to a spent quota): not a rate limit.
    "budget as a 429": (
        429,
        {"error": {"message": "budget exceeded for account 'a'", "type": "budget_exceeded"}},
        "Your budget is used up",
    ),
    "person's key revoked": (
        401,
        {"error": {"message": "account x is disabled or has no proxy key"}},
        "proxy key is revoked",
    ),
    "context": (400, {"error": {"message": "prompt is too long for the context window"}}, "too long for this"),
    "backend down": (500, {"error": {"message": "Connection refused"}}, "model backend for 'smollm2:135m' failed"),
}


@pytest.mark.parametrize("status,body,says", ERRORS.values(), ids=ERRORS.keys())
def test_errors_are_explained_in_the_chat_and_the_message_is_kept(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory, status: int, body: dict[str, object], says: str
) -> None:
    ui_env.script = Script(error=(status, body))
    app = send(open_page(person), "Please keep this text")
    assert says in texts(app)
    assert app.code[-1].value == "Please keep this text"
    messages = history.messages(history.summaries()[0].id)
    assert [(m.role, m.content) for m in messages] == [("user", "Please keep this text")]
    ui_env.script = Script()
    app.button(key="resend").click().run()
    assert [m.role for m in history.messages(history.summaries()[0].id)] == ["user", "assistant"]


def test_limits_are_enforced_before_any_request(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page(person)
    app = send(app, "x" * 40000)
    assert "Not sent" in texts(app)
    assert ui_env.requests == []


def test_page_stays_usable_and_says_why_when_the_proxy_is_down(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.probe import free_port

    monkeypatch.setenv("LITELLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    get_settings.cache_clear()
    app = open_page(person)
    assert not app.exception
    page = texts(app)
    assert "proxy" in page and "start it with `make up`" in page
    app = send(app, "Are you there?")
    assert "Cannot reach the proxy" in texts(app)
    assert [m.content for m in history.messages(history.summaries()[0].id)] == ["Are you there?"]


def test_the_api_key_never_appears_on_the_page(
    ui_env: FakeModelServer, person: SignedIn, history: LocalHistory
) -> None:
    ui_env.script = Script(error=(401, {"error": {"message": "bad key sk-ui-test-key-0123456789"}}))
    app = send(open_page(person), "Hi")
    assert "sk-ui-test-key-0123456789" not in texts(app)


def test_each_person_sees_only_their_own_chats_and_the_proxy_is_told_who_asks(
    ui_env: FakeModelServer,
    person: SignedIn,
    history: LocalHistory,
    postgres: PostgresInstance,
    account_store: AccountStore,
) -> None:
    send(open_page(person), "A question of the admin")
    mine = history.summaries()[0]
    assert ui_env.headers[-1]["x-genailabs-user"] == str(person.account.id)
    assert ui_env.headers[-1]["authorization"] == "Bearer sk-ui-test-key-0123456789"  # the UI's service key

    ensure_account(postgres.url("genailabs"), postgres.url("litellm"), "chat-user", role="user")
    signed = account_store.sign_in("chat-user", UI_PASSWORD)
    other = SignedIn(account=signed.account, token=signed.token)
    theirs = open_page(other)
    assert not [b for b in theirs.button if b.key == f"open-{mine.id}"]
    peeking = open_page(other, c=mine.id)
    assert not peeking.exception and "A question of the admin" not in texts(peeking)
    assert peeking.session_state["conversation"] is None
    send(theirs, "A question of the user")
    assert ui_env.headers[-1]["x-genailabs-user"] == str(other.account.id)
    their_history = LocalHistory(get_settings().database_url.get_secret_value(), str(other.account.id))
    assert [s.title for s in their_history.summaries()] != [] and mine.id not in [
        s.id for s in their_history.summaries()
    ]
    assert their_history.messages(mine.id) == [] and their_history.get(mine.id) is None
    their_history.delete(mine.id)
    assert history.get(mine.id) is not None, "someone else's chat cannot be deleted"
    assert [s.id for s in history.summaries()] == [mine.id]
