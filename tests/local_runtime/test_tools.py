"""Tool calling: grammar-constrained calls that always fit the tool's schema, or a text answer."""

import json

import httpx
import ollama
import pytest
from runtime_support import GREEDY, MODEL
from runtime_tool_specs import ADD_PARAMETERS, ADD_TOOL, WEATHER_PARAMETERS, WEATHER_TOOL, schema_violations

pytestmark = pytest.mark.timeout(120)
WEATHER_QUESTION = {"role": "user", "content": "What is the weather today in Paris?"}


@pytest.fixture
def client(base_url: str) -> ollama.Client:
    return ollama.Client(host=base_url)


def test_chat_with_tools_returns_a_call_that_fits_the_schema(client: ollama.Client) -> None:
    reply = client.chat(MODEL, messages=[WEATHER_QUESTION], tools=[WEATHER_TOOL, ADD_TOOL], options=GREEDY)
    calls = reply.message.tool_calls or []
    assert len(calls) == 1, reply.message
    assert calls[0].function.name == "get_current_weather"
    assert schema_violations(calls[0].function.arguments, WEATHER_PARAMETERS) == []
    assert reply.done_reason == "stop"


def test_chat_with_tools_answers_in_text_when_no_tool_fits(client: ollama.Client) -> None:
    reply = client.chat(
        MODEL, messages=[{"role": "user", "content": "Tell me a joke."}], tools=[WEATHER_TOOL], options=GREEDY
    )
    assert not reply.message.tool_calls
    assert reply.message.content


def test_chat_answers_in_text_after_a_tool_result(client: ollama.Client) -> None:
    call = {"function": {"name": "get_current_weather", "arguments": {"location": "Paris", "format": "celsius"}}}
    messages = [
        WEATHER_QUESTION,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {
            "role": "tool",
            "content": json.dumps({"temperature": 21, "sky": "sunny"}),
            "tool_name": "get_current_weather",
        },
    ]
    reply = client.chat(MODEL, messages=messages, tools=[WEATHER_TOOL], options={**GREEDY, "num_predict": 48})
    assert not reply.message.tool_calls
    assert reply.message.content and not reply.message.content.startswith("<")


def test_streamed_chat_delivers_the_tool_call_in_one_chunk(client: ollama.Client) -> None:
    stream = client.chat(MODEL, messages=[WEATHER_QUESTION], tools=[WEATHER_TOOL], stream=True, options=GREEDY)
    parts = list(stream)
    with_calls = [part for part in parts if part.message.tool_calls]
    assert len(with_calls) == 1 and parts[-1].done
    assert schema_violations(with_calls[0].message.tool_calls[0].function.arguments, WEATHER_PARAMETERS) == []
    assert all(not (part.message.content or "").startswith("<tool_call>") for part in parts)


def test_raw_http_tool_call_has_ollama_shape(http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": [WEATHER_QUESTION], "tools": [WEATHER_TOOL], "stream": False, "options": GREEDY}
    message = http.post("/api/chat", json=body).json()["message"]
    assert message["role"] == "assistant" and message["content"] == ""
    function = message["tool_calls"][0]["function"]
    assert function["name"] == "get_current_weather" and isinstance(function["arguments"], dict)


def test_openai_required_tool_choice_always_calls_with_valid_json(http: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is 17 plus 25?"}],
        "tools": [ADD_TOOL],
        "tool_choice": "required",
        "temperature": 0,
    }
    reply = http.post("/v1/chat/completions", json=body).json()
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert schema_violations(json.loads(call["function"]["arguments"]), ADD_PARAMETERS) == []


@pytest.mark.parametrize(
    "question",
    ["Read the file notes/todo.txt", "Show me what is in shopping.md", "Open the file called report 2024.txt"],
)
def test_string_arguments_never_open_with_punctuation_or_a_space(http: httpx.Client, question: str) -> None:
    """A token like `"}` after `":` used to slip its tail into the argument ("}notes/todo.txt")."""
    tool = {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a text file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}], "tools": [tool], "temperature": 0}
    body["tool_choice"] = "required"
    reply = http.post("/v1/chat/completions", json=body).json()
    path = json.loads(reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])["path"]
    assert path == "" or path[0] not in ' "}],.:', path
