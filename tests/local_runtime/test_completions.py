"""OpenAI's legacy text completions (/v1/completions) as the official SDK sends them, on a real runtime."""

import httpx
import openai
import pytest
from runtime_support import MODEL

from procs import scaled

pytestmark = pytest.mark.timeout(180)
PROMPT = "The capital of France is"


@pytest.fixture
def sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=scaled(120))


def test_completion_answers_with_text_and_usage(sdk: openai.OpenAI) -> None:
    reply = sdk.completions.create(model=MODEL, prompt=PROMPT, max_tokens=6, temperature=0, seed=3)
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert reply.model == MODEL
    (choice,) = reply.choices
    assert choice.text and choice.index == 0 and choice.logprobs is None
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_prompt_is_completed_as_written_like_a_raw_generate(sdk: openai.OpenAI, base_url: str) -> None:
    reply = sdk.completions.create(model=MODEL, prompt=[PROMPT], max_tokens=8, temperature=0, seed=3)
    options = {"num_predict": 8, "temperature": 0, "seed": 3, "top_p": 1.0}
    raw = httpx.post(
        f"{base_url}/api/generate",
        json={"model": MODEL, "prompt": PROMPT, "raw": True, "stream": False, "options": options},
        timeout=scaled(120),
    ).json()
    assert reply.choices[0].text == raw["response"]
    assert reply.usage is not None and reply.usage.prompt_tokens == raw["prompt_eval_count"]


def test_streamed_completion_matches_the_whole_one(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.completions.create(
            model=MODEL,
            prompt=PROMPT,
            max_tokens=6,
            temperature=0,
            seed=3,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    whole = sdk.completions.create(model=MODEL, prompt=PROMPT, max_tokens=6, temperature=0, seed=3)
    assert all(chunk.object == "text_completion" for chunk in chunks)
    assert "".join(chunk.choices[0].text for chunk in chunks if chunk.choices) == whole.choices[0].text
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_stop_sequence_ends_the_text(sdk: openai.OpenAI) -> None:
    reply = sdk.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=["7"])
    assert "7" not in reply.choices[0].text
    assert reply.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"prompt": PROMPT, "n": 2}, 400, "only n=1"),
        ({"prompt": PROMPT, "best_of": 3}, 400, "only n=1"),
        ({"prompt": PROMPT, "echo": True}, 400, "echo is not supported"),
        ({"prompt": PROMPT, "logprobs": 2}, 400, "logprobs is not supported"),
        ({"prompt": [PROMPT, PROMPT]}, 400, "prompt must be a string or a list of one string"),
        ({"prompt": ""}, 400, "prompt must not be empty"),
        ({"prompt": [1, 2, 3]}, 400, "invalid value for prompt"),
        ({"prompt": PROMPT, "temperature": 5}, 400, "invalid value for temperature"),
        ({"prompt": PROMPT, "model": "nope"}, 404, "model 'nope' not found"),
        ({}, 400, "invalid value for prompt"),
    ],
)
def test_bad_completion_requests_get_openai_errors(
    http: httpx.Client, body: dict[str, object], status: int, message: str
) -> None:
    response = http.post("/v1/completions", json={"model": MODEL, **body})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"].startswith(message), error
    assert error["type"] in ("invalid_request_error", "not_found_error")
