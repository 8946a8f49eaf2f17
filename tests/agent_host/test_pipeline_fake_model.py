"""The chat pipeline's prepare step on a real session store, with a scripted fake model for summaries."""

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest
from account_support import stored_person

from agent_host.config import Settings
from agent_host.context.tokens import TokenCounter
from agent_host.db import owner_id
from agent_host.pipeline.chat import ChatPipeline
from agent_host.schemas import ChatCompletionRequest, SessionCreate
from agent_host.sessions.store import NewMessage, SessionStore, open_pool
from genailabs_accounts.models import Account
from procs import PostgresInstance

MODEL = "smollm2:135m"
WINDOW = 300


class FakeModel:
    """Stands in for the proxy's chat completions: a fixed summary, or a connection failure."""

    def __init__(self, summary: str | None = "Ada likes blue.") -> None:
        self.summary = summary
        self.calls: list[list[dict[str, Any]]] = []
        raw = SimpleNamespace(create=self.create_raw)
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create, with_raw_response=raw))

    async def create(self, *, messages: list[dict[str, Any]], **_: Any) -> Any:
        self.calls.append(messages)
        if self.summary is None:
            raise openai.APIConnectionError(request=httpx.Request("POST", "http://proxy/v1/chat/completions"))
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=self.summary))])

    async def create_raw(self, **kwargs: Any) -> Any:
        """`with_raw_response.create`: the answer behind the proxy's headers (none here: never from its cache)."""
        response = await self.create(**kwargs)
        return SimpleNamespace(headers=httpx.Headers(), parse=lambda: response)


class FixedWindow:
    async def window(self, model: str) -> int:
        return WINDOW


@pytest.fixture
async def store(postgres: PostgresInstance) -> AsyncIterator[SessionStore]:
    pool = await open_pool(postgres.url("genailabs"), 5.0)
    await pool.wait(timeout=10)
    yield SessionStore(pool)
    await pool.close()


@pytest.fixture
async def person(store: SessionStore) -> Account:
    return await stored_person(store.pool)


def pipeline(store: SessionStore, model: FakeModel) -> ChatPipeline:
    settings = Settings(agent_host_api_key="k", agent_host_proxy_key="k", recent_messages=2, context_margin=0)  # type: ignore[arg-type]
    return ChatPipeline(model, store, FixedWindow(), TokenCounter(), settings)  # type: ignore[arg-type]


async def long_session(store: SessionStore, person: Account, turns: int = 10) -> str:
    session = await store.create(owner_id(person), SessionCreate(title="long"))
    text = "I live by the sea with three cats and my favourite colour is blue, as I keep saying."
    await store.append(
        owner_id(person),
        session.id,
        [NewMessage(r, f"{i}: {text}", 25) for i in range(turns) for r in ("user", "assistant")],
    )
    return session.id


def request(session_id: str) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model=MODEL, messages=[{"role": "user", "content": "And now?"}], max_tokens=16, session_id=session_id
    )  # type: ignore[list-item]


async def test_a_long_session_is_folded_into_a_stored_summary_keeping_recent_messages(
    store: SessionStore, person: Account
) -> None:
    session_id = await long_session(store, person)
    model = FakeModel()
    turn = await pipeline(store, model).prepare(request(session_id), person)
    assert model.calls, "the model was asked for a summary"
    assert turn.facts.summarised_messages == 18 and turn.facts.trimmed_messages == 0
    assert turn.facts.prompt_tokens + turn.facts.reply_tokens <= WINDOW
    assert "Ada likes blue." in turn.messages[0]["content"]
    assert [m["content"][:2] for m in turn.messages[1:3]] == ["9:", "9:"]
    session = await store.get(owner_id(person), session_id)
    assert session.summary == "Ada likes blue." and session.summarised_messages == 18


async def test_the_next_turn_reuses_the_stored_summary_without_asking_the_model(
    store: SessionStore, person: Account
) -> None:
    session_id = await long_session(store, person)
    await pipeline(store, FakeModel()).prepare(request(session_id), person)
    again = FakeModel()
    turn = await pipeline(store, again).prepare(request(session_id), person)
    assert again.calls == [] and turn.facts.history_messages == 2
    assert "Ada likes blue." in turn.messages[0]["content"]


async def test_a_summary_that_fails_falls_back_to_trimming_and_still_fits(store: SessionStore, person: Account) -> None:
    session_id = await long_session(store, person)
    turn = await pipeline(store, FakeModel(summary=None)).prepare(request(session_id), person)
    assert turn.facts.summarised_messages == 0 and turn.facts.trimmed_messages > 0
    assert turn.facts.prompt_tokens + turn.facts.reply_tokens <= WINDOW
    assert (await store.get(owner_id(person), session_id)).summary is None
