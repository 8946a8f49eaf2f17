"""The budget and the compression logic, with a scripted fake model in place of the real one."""

from typing import Any

import pytest

from agent_host.context.budget import (
    MIN_REPLY_TOKENS,
    HistoryItem,
    PromptParts,
    assemble,
    fixed_tokens,
    history_fits,
    reply_allowance,
    split_for_summary,
)
from agent_host.context.compression import summarise
from agent_host.errors import ContextTooLarge


def words(text: str) -> int:
    return len(text.split())


def item(index: int, tokens: int = 50) -> HistoryItem:
    return HistoryItem(index, "user" if index % 2 else "assistant", " ".join(["w"] * tokens), tokens)


def parts(history: list[HistoryItem], summary: str | None = None) -> PromptParts:
    return PromptParts(
        system=[{"role": "system", "content": "sys"}],
        system_tokens=10,
        turn=[{"role": "user", "content": "now"}],
        turn_tokens=10,
        history=history,
        summary=summary,
        summary_tokens=words(summary or ""),
    )


class FakeModel:
    """Answers every summary request with a fixed text and records what it was sent."""

    def __init__(self, reply: str = "the user is Ada") -> None:
        self.reply = reply
        self.requests: list[list[dict[str, Any]]] = []

    async def __call__(self, messages: list[dict[str, Any]], max_tokens: int) -> str:
        self.requests.append(messages)
        return self.reply


def test_the_reply_gets_what_it_asks_for_when_there_is_room() -> None:
    assert reply_allowance(window=512, fixed_tokens=100, requested=32, default=256) == 32


def test_a_small_requested_reply_is_kept_as_asked() -> None:
    assert reply_allowance(window=512, fixed_tokens=100, requested=1, default=256) == 1


def test_the_reply_shrinks_to_the_room_left() -> None:
    assert reply_allowance(window=512, fixed_tokens=480, requested=100, default=256) == 32


def test_a_turn_that_leaves_no_room_for_a_reply_is_refused() -> None:
    with pytest.raises(ContextTooLarge):
        reply_allowance(window=512, fixed_tokens=512 - MIN_REPLY_TOKENS + 1, requested=None, default=256)


def test_history_that_fits_is_sent_whole() -> None:
    plan = assemble(parts([item(1), item(2)]), window=512, reply=32)
    assert plan.history_kept == 2 and plan.trimmed == 0
    assert plan.prompt_tokens + plan.reply_tokens <= 512


def test_history_that_does_not_fit_loses_its_oldest_messages_first() -> None:
    history = [item(i) for i in range(1, 11)]
    plan = assemble(parts(history), window=400, reply=32)
    assert plan.trimmed > 0
    assert plan.messages[-2]["content"] == history[-1].content
    assert plan.prompt_tokens + plan.reply_tokens <= 400


def test_the_summary_goes_right_after_the_system_prompt() -> None:
    plan = assemble(parts([item(1)], summary="earlier facts"), window=512, reply=32)
    assert plan.messages[1]["role"] == "system" and "earlier facts" in plan.messages[1]["content"]


def test_the_fixed_part_counts_system_turn_and_summary() -> None:
    assert fixed_tokens(parts([], summary="a b c")) > fixed_tokens(parts([]))


def test_fitting_is_judged_with_the_reply_reserved() -> None:
    history = [item(1, 100)]
    assert history_fits(parts(history), window=300, reply=32)
    assert not history_fits(parts(history), window=300, reply=200)


def test_recent_messages_are_kept_verbatim_and_the_rest_go_to_the_summary() -> None:
    older, recent = split_for_summary([item(i) for i in range(1, 8)], keep_recent=4)
    assert [m.id for m in older] == [1, 2, 3] and [m.id for m in recent] == [4, 5, 6, 7]


async def test_compression_folds_older_turns_into_the_previous_summary() -> None:
    model = FakeModel()
    summary = await summarise("earlier", [item(1), item(2)], model, words, window=512, summary_tokens=64)
    assert summary == "the user is Ada"
    assert len(model.requests) == 1
    assert "earlier" in model.requests[0][1]["content"]


async def test_compression_splits_the_work_so_each_model_call_fits_the_window() -> None:
    model = FakeModel()
    history = [item(i, 100) for i in range(1, 13)]
    await summarise(None, history, model, words, window=512, summary_tokens=64)
    assert len(model.requests) > 1
    for request in model.requests:
        assert sum(words(m["content"]) for m in request) + 64 <= 512


async def test_a_single_huge_message_is_shortened_for_the_summary_call() -> None:
    model = FakeModel()
    await summarise(None, [item(1, 5000)], model, words, window=512, summary_tokens=64)
    assert sum(words(m["content"]) for m in model.requests[0]) + 64 <= 512


async def test_an_empty_model_answer_keeps_the_previous_summary() -> None:
    summary = await summarise("kept", [item(1)], FakeModel(reply=" "), words, window=512, summary_tokens=64)
    assert summary == "kept"
