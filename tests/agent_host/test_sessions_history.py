"""One history: edits of a session's stored messages are exactly what the model is sent next (real PostgreSQL,
the chat pipeline in process, the scripted fake model of test_pipeline_fake_model)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from account_support import stored_person
from test_pipeline_fake_model import FakeModel

from agent_host.agents.notes import NotesStore
from agent_host.config import Settings
from agent_host.context.tokens import TokenCounter
from agent_host.db import owner_id
from agent_host.errors import SessionNotFound
from agent_host.pipeline.chat import ChatPipeline
from agent_host.schemas import ChatCompletionRequest, SessionCreate
from agent_host.sessions.errors import MessageNotFound, NothingToRegenerate
from agent_host.sessions.store import NewMessage, SessionStore, open_pool
from genailabs_accounts.models import Account
from procs import PostgresInstance

MODEL = "smollm2:135m"


class Window:
    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    async def window(self, model: str) -> int:
        return self.tokens


@pytest.fixture(scope="module")
async def store(postgres: PostgresInstance) -> AsyncIterator[SessionStore]:
    pool = await open_pool(postgres.url("genailabs"), 5.0)
    await pool.wait(timeout=10)
    yield SessionStore(pool)
    await pool.close()


@pytest.fixture(scope="module")
async def person(store: SessionStore) -> Account:
    return await stored_person(store.pool, "history")


@pytest.fixture(scope="module")
async def stranger(store: SessionStore) -> Account:
    return await stored_person(store.pool, "stranger")


def pipeline(store: SessionStore, model: FakeModel, window: int = 8000) -> ChatPipeline:
    settings = Settings(agent_host_api_key="k", agent_host_proxy_key="k", recent_messages=2, context_margin=0)  # type: ignore[arg-type]
    return ChatPipeline(model, store, Window(window), TokenCounter(), settings)  # type: ignore[arg-type]


def chat(session_id: str, content: str | None = None) -> ChatCompletionRequest:
    """A new user message, or (None) a regeneration of the stored history."""
    if content is None:
        return ChatCompletionRequest(model=MODEL, max_tokens=16, session_id=session_id, regenerate=True)
    messages: Any = [{"role": "user", "content": content}]
    return ChatCompletionRequest(model=MODEL, messages=messages, max_tokens=16, session_id=session_id)


async def conversation(store: SessionStore, person: Account, *texts: str, tokens: int = 5) -> str:
    """A session holding user/assistant messages alternately, each counted as `tokens`."""
    session = await store.create(owner_id(person), SessionCreate(title="history"))
    roles = ("user", "assistant")
    await store.append(
        owner_id(person), session.id, [NewMessage(roles[i % 2], text, tokens) for i, text in enumerate(texts)]
    )
    return session.id


async def stored(store: SessionStore, person: Account, session_id: str) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in await store.messages(owner_id(person), session_id)]


async def answer(store: SessionStore, person: Account, request: ChatCompletionRequest) -> list[dict[str, Any]]:
    """Runs a turn against the fake model; what the model was sent (without system messages)."""
    model = FakeModel(summary="the new answer")
    chat_pipeline = pipeline(store, model)
    await chat_pipeline.complete(await chat_pipeline.prepare(request, person))
    return [m for m in model.calls[-1] if m["role"] != "system"]


async def test_a_replaced_message_is_what_the_model_is_sent_next(store: SessionStore, person: Account) -> None:
    session_id = await conversation(store, person, "I have two cats.", "Nice!", "What pets do I have?", "Cats.")
    first = (await store.messages(owner_id(person), session_id))[0]
    edited = await store.replace_message(owner_id(person), session_id, first.id, "I have a dog called Rex.", 9)
    assert edited.content == "I have a dog called Rex." and edited.tokens == 9
    before = await stored(store, person, session_id)
    assert before[0]["content"] == "I have a dog called Rex."
    sent = await answer(store, person, chat(session_id, "And its name?"))
    assert sent == [*before, {"role": "user", "content": "And its name?"}]
    assert (await stored(store, person, session_id))[-1] == {"role": "assistant", "content": "the new answer"}


async def test_a_deleted_message_is_gone_from_the_history_and_the_prompt(store: SessionStore, person: Account) -> None:
    session_id = await conversation(store, person, "One.", "Two.", "Three.", "Four.")
    second = (await store.messages(owner_id(person), session_id))[1]
    await store.delete_message(owner_id(person), session_id, second.id)
    assert await stored(store, person, session_id) == [
        {"role": "user", "content": "One."},
        {"role": "user", "content": "Three."},
        {"role": "assistant", "content": "Four."},
    ]
    sent = await answer(store, person, chat(session_id, "Five."))
    assert [m["content"] for m in sent] == ["One.", "Three.", "Four.", "Five."]


async def test_truncate_then_regenerate_answers_the_kept_history_once(store: SessionStore, person: Account) -> None:
    session_id = await conversation(store, person, "Hi.", "Hello!", "Tell me a joke.", "A bad joke.", "More.", "No.")
    messages = await store.messages(owner_id(person), session_id)
    assert await store.delete_after(owner_id(person), session_id, messages[2].id) == 3
    kept = await stored(store, person, session_id)
    assert [m["content"] for m in kept] == ["Hi.", "Hello!", "Tell me a joke."]
    sent = await answer(store, person, chat(session_id))
    assert sent == kept  # exactly the stored history, the user's last message not repeated
    after = await store.messages(owner_id(person), session_id)
    assert [m.content for m in after] == ["Hi.", "Hello!", "Tell me a joke.", "the new answer"]
    assert after[-1].metadata["context"]["session_id"] == session_id


async def test_regenerate_needs_the_history_to_end_with_the_users_message(store: SessionStore, person: Account) -> None:
    session_id = await conversation(store, person, "Hi.", "Hello!")
    with pytest.raises(NothingToRegenerate):
        await pipeline(store, FakeModel()).prepare(chat(session_id), person)
    assert len(await store.messages(owner_id(person), session_id)) == 2


async def test_an_edit_the_summary_covers_drops_the_summary(store: SessionStore, person: Account) -> None:
    text = "I live by the sea with three cats and my favourite colour is blue, as I keep saying."
    session_id = await conversation(store, person, *[f"{i}: {text}" for i in range(20)], tokens=25)
    await pipeline(store, FakeModel("Ada likes blue."), window=300).prepare(chat(session_id, "And now?"), person)
    session = await store.get(owner_id(person), session_id)
    assert session.summary == "Ada likes blue." and session.summarised_messages == 18
    messages = await store.messages(owner_id(person), session_id)
    # Above what the summary covers: the summary stays.
    await store.replace_message(owner_id(person), session_id, messages[-1].id, "19: green now.", 6)
    assert (await store.get(owner_id(person), session_id)).summary == "Ada likes blue."
    # Inside it: dropped, and the model is sent the stored messages themselves.
    await store.replace_message(owner_id(person), session_id, messages[3].id, "3: I moved to the mountains.", 9)
    session = await store.get(owner_id(person), session_id)
    assert session.summary is None and session.summarised_messages == 0
    model = FakeModel("never asked")
    turn = await pipeline(store, model).prepare(chat(session_id, "Where do I live?"), person)
    assert model.calls == []
    assert [m for m in turn.messages if m["role"] != "system"] == [
        *await stored(store, person, session_id),
        {"role": "user", "content": "Where do I live?"},
    ]
    assert not any("Ada likes blue." in str(m["content"]) for m in turn.messages)


async def test_deleting_or_truncating_inside_the_summary_drops_it(store: SessionStore, person: Account) -> None:
    text = "I live by the sea with three cats and my favourite colour is blue, as I keep saying."
    for edit in ("delete", "truncate"):
        session_id = await conversation(store, person, *[f"{i}: {text}" for i in range(20)], tokens=25)
        await pipeline(store, FakeModel("Ada likes blue."), window=300).prepare(chat(session_id, "Now?"), person)
        messages = await store.messages(owner_id(person), session_id)
        if edit == "delete":
            await store.delete_message(owner_id(person), session_id, messages[0].id)
        else:
            await store.delete_after(owner_id(person), session_id, messages[5].id)
        session = await store.get(owner_id(person), session_id)
        assert (session.summary, session.summarised_messages, session.message_count) == (
            None,
            0,
            19 if edit == "delete" else 6,
        )


async def test_someone_elses_session_messages_and_notes_are_not_found(
    store: SessionStore, person: Account, stranger: Account
) -> None:
    session_id = await conversation(store, person, "Secret.", "Kept.")
    message = (await store.messages(owner_id(person), session_id))[0]
    notes = NotesStore(store.pool)
    await notes.add(owner_id(person), session_id, "mine")
    other = owner_id(stranger)
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: store.get(other, session_id),
        lambda: store.messages(other, session_id),
        lambda: store.replace_message(other, session_id, message.id, "Overwritten.", 1),
        lambda: store.delete_message(other, session_id, message.id),
        lambda: store.delete_after(other, session_id, message.id),
        lambda: store.append(other, session_id, [NewMessage("user", "Injected.", 1)]),
        lambda: store.delete(other, session_id),
        lambda: notes.add(other, session_id, "theirs"),
        lambda: notes.list_notes(other, session_id),
    ]
    for attempt in attempts:
        with pytest.raises(SessionNotFound):
            await attempt()
    with pytest.raises(SessionNotFound):
        await pipeline(store, FakeModel()).prepare(chat(session_id, "Tell me."), stranger)
    assert session_id not in {s.id for s in await store.list_sessions(other)}
    assert await stored(store, person, session_id) == [
        {"role": "user", "content": "Secret."},
        {"role": "assistant", "content": "Kept."},
    ]
    assert [n.text for n in await notes.list_notes(owner_id(person), session_id)] == ["mine"]


async def test_a_message_of_another_session_is_not_found(store: SessionStore, person: Account) -> None:
    first = await conversation(store, person, "A.", "B.")
    second = await conversation(store, person, "C.", "D.")
    foreign = (await store.messages(owner_id(person), first))[0]
    with pytest.raises(MessageNotFound):
        await store.replace_message(owner_id(person), second, foreign.id, "X.", 1)
    with pytest.raises(MessageNotFound):
        await store.delete_after(owner_id(person), second, foreign.id)
    assert [m["content"] for m in await stored(store, person, first)] == ["A.", "B."]


async def test_a_summary_saved_meanwhile_through_another_replica_wins(store: SessionStore, person: Account) -> None:
    owner = owner_id(person)
    session_id = await conversation(store, person, *[f"message {i}" for i in range(10)])
    stored_ids = [m.id for m in await store.messages(owner, session_id)]
    # Two replicas summarise the same history at once: the first saved wins, the other is dropped.
    assert await store.save_summary(owner, session_id, "six", stored_ids[5], 6)
    assert not await store.save_summary(owner, session_id, "eight", stored_ids[7], 8)
    session = await store.get(owner, session_id)
    assert (session.summary, session.summarised_messages) == ("six", 6)
    # One built on the saved summary is saved, and counted once.
    assert await store.save_summary(owner, session_id, "six and two", stored_ids[7], 2)
    # One that folds a message deleted meanwhile is dropped: it would tell of the message.
    await store.delete_message(owner, session_id, stored_ids[8])
    assert not await store.save_summary(owner, session_id, "stale", stored_ids[9], 2)
    session, history = await store.history(owner, session_id)
    assert (session.summary, session.summarised_messages) == ("six and two", 8)
    assert [m.content for m in history] == ["message 9"]
