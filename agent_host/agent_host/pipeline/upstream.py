"""Errors of the proxy call translated into the host's domain errors."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai

from agent_host.errors import BadUpstreamRequest, ModelNotFound, ProxyUnavailable, UpstreamError


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and detail.get("message"):
            return str(detail["message"])
    return str(exc.message)


@asynccontextmanager
async def upstream_errors() -> AsyncIterator[None]:
    try:
        yield
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise ProxyUnavailable(f"the LiteLLM proxy is unreachable ({type(exc).__name__}); try again shortly") from exc
    except openai.NotFoundError as exc:
        raise ModelNotFound(_message(exc)) from exc
    except openai.BadRequestError as exc:
        message = _message(exc)
        if "invalid model name" in message.lower() or "model not found" in message.lower():
            raise ModelNotFound(message) from exc
        raise BadUpstreamRequest(message) from exc
    except openai.AuthenticationError as exc:
        raise UpstreamError("the proxy rejected the agent host's key (AGENT_HOST_PROXY_KEY)") from exc
    except openai.APIStatusError as exc:
        if exc.status_code in (502, 503, 504):
            raise ProxyUnavailable(f"the proxy cannot reach a model right now: {_message(exc)}") from exc
        raise UpstreamError(f"the proxy answered {exc.status_code}: {_message(exc)}") from exc
