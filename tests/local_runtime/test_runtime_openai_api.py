"""The OpenAI-compatible routes through the official openai SDK."""

import json

import httpx
import openai
import pytest
from runtime_support import MODEL
from runtime_tool_specs import WEATHER_PARAMETERS, WEATHER_TOOL, schema_violations

pytestmark = pytest.mark.timeout(120)
QUESTION = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused")


def test_models_lists_the_default_model(sdk: openai.OpenAI) -> None:
    assert MODEL in [model.id for model in sdk.models.list()]


def test_chat_completion_answers_with_usage(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12, temperature=0)  # type: ignore[arg-type]
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 12
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_completion_streams_sse_chunks_and_usage(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model=MODEL,
            messages=QUESTION,  # type: ignore[arg-type]
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    whole = sdk.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=12, temperature=0)  # type: ignore[arg-type]
    assert text == whole.choices[0].message.content
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_sse_stream_ends_with_done_marker(http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 4, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert all(event.startswith("data: ") for event in events)


def test_streamed_tool_call_arrives_as_openai_deltas(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "What is the weather today in Paris?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            temperature=0,
            seed=7,
            stream=True,
        )
    )
    calls = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and calls[0].function is not None
    assert calls[0].function.name == "get_current_weather"
    assert schema_violations(json.loads(calls[0].function.arguments or ""), WEATHER_PARAMETERS) == []
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "tool_calls"


CAT_QUESTION = [{"role": "user", "content": "Give a JSON object with the name and age of a cat named Tom who is 3."}]


def test_response_format_json_object_gives_json_or_stops_at_max_tokens(sdk: openai.OpenAI) -> None:
    """json_object bounds no string or whitespace run, so only an answer the model ended itself must parse."""
    reply = sdk.chat.completions.create(
        model=MODEL,
        messages=CAT_QUESTION,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
        temperature=0,
        seed=7,
        max_tokens=160,
    )
    content, reason = reply.choices[0].message.content or "", reply.choices[0].finish_reason
    assert content.startswith("{")
    if reason == "stop":
        assert isinstance(json.loads(content), dict)
    else:
        assert reason == "length" and reply.usage is not None and reply.usage.completion_tokens == 160


def test_response_format_bounded_json_schema_always_gives_json(sdk: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 16}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    reply = sdk.chat.completions.create(
        model=MODEL,
        messages=CAT_QUESTION,  # type: ignore[arg-type]
        response_format={"type": "json_schema", "json_schema": {"name": "cat", "schema": schema}},
        temperature=0,
        seed=7,
        max_tokens=300,
    )
    assert reply.choices[0].finish_reason == "stop"  # the grammar's longest answer fits in max_tokens
    answer = json.loads(reply.choices[0].message.content or "")
    assert set(answer) == {"name", "age"} and len(answer["name"]) <= 16


def test_unknown_model_is_an_openai_not_found_error(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="missing:1b", messages=QUESTION)  # type: ignore[arg-type]
    assert "model 'missing:1b' not found" in str(caught.value)
