"""The proxy's errors become the host's own, without LiteLLM's internals in the message."""

import httpx
import openai
import pytest

from agent_host.errors import (
    AccountKeyRevoked,
    BadUpstreamRequest,
    BudgetExceeded,
    ModelNotAllowed,
    ModelNotFound,
    ProxyUnavailable,
    UpstreamError,
)
from agent_host.pipeline.upstream import upstream_errors

LITELLM_400 = (
    'litellm.BadRequestError: OllamaException - {"error":"invalid message content type: <nil>"}\n'
    "Received Model Group=smollm2:135m\nAvailable Model Group Fallbacks=None"
)


def proxy_error(status: int, message: str, kind: str | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://proxy/v1/chat/completions")
    body = {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    response = httpx.Response(status, json=body, request=request)
    return openai.OpenAI(api_key="x", base_url="http://proxy/v1")._make_status_error(
        message, body=body, response=response
    )


async def raised(error: Exception) -> Exception:
    with pytest.raises(Exception) as caught:
        async with upstream_errors():
            raise error
    return caught.value


async def test_a_proxy_400_keeps_its_reason_but_not_litellms_internals() -> None:
    error = await raised(proxy_error(400, LITELLM_400))
    assert isinstance(error, BadUpstreamRequest)
    assert error.message.startswith("the proxy refused the request (400): ")
    assert "invalid message content type" in error.message
    for internal in ("litellm.", "OllamaException", "Model Group", "Fallbacks"):
        assert internal not in error.message


async def test_an_unknown_model_is_a_404_in_the_hosts_words() -> None:
    message = "litellm.BadRequestError: Invalid model name passed in model=no-such:1b. Call `/v1/models` to view"
    error = await raised(proxy_error(400, message))
    assert isinstance(error, ModelNotFound)
    assert "no-such:1b" in error.message and "litellm." not in error.message


async def test_a_proxy_500_is_a_502_that_does_not_repeat_the_proxys_message() -> None:
    error = await raised(proxy_error(500, "litellm.APIConnectionError: Traceback (most recent call last): secret"))
    assert isinstance(error, UpstreamError) and error.status == 502
    assert "Traceback" not in error.message and "litellm" not in error.message


@pytest.mark.parametrize("status", [502, 503, 504, 429])
async def test_a_busy_or_unreachable_model_is_503(status: int) -> None:
    error = await raised(proxy_error(status, "litellm.ServiceUnavailableError: all deployments cooling down"))
    assert isinstance(error, ProxyUnavailable)
    assert "litellm." not in error.message


# The hub's refusals for the person a request acts for (litellm_hub/hub/errors.py), as the hub words them.
PERSON_REFUSALS = [
    (403, "key_model_access_denied", "account 'ada' may not use model 'phi:latest'; allowed: smollm2:135m",
     ModelNotAllowed, 403),
    (400, "budget_exceeded", "budget exceeded for account 'ada': spent $1.0000 of $1.0000", BudgetExceeded, 429),
    (401, "account_disabled", "account 0b6c... is disabled or has no proxy key", AccountKeyRevoked, 403),
]  # fmt: skip


@pytest.mark.parametrize(("status", "kind", "message", "expected", "host_status"), PERSON_REFUSALS)
async def test_what_the_proxy_refuses_a_person_is_said_to_that_person(
    status: int, kind: str, message: str, expected: type[Exception], host_status: int
) -> None:
    error = await raised(proxy_error(status, message, kind))
    assert isinstance(error, expected) and error.status == host_status
    assert "AGENT_HOST_PROXY_KEY" not in error.message  # not the host's own key's fault
    if kind != "account_disabled":
        assert message in error.message  # the person's own limit, named
