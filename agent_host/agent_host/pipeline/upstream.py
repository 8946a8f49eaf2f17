"""Errors of the proxy call translated into the host's domain errors, in the host's own words.

LiteLLM's messages name its internals (exception classes, provider names, model groups and fallbacks): they are
logged, and the client gets the host's message with the proxy's reason in one short, cleaned line.
"""

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai

from agent_host.errors import (
    AccountKeyRevoked,
    BadUpstreamRequest,
    BudgetExceeded,
    ModelNotAllowed,
    ModelNotFound,
    ProxyUnavailable,
    UpstreamError,
)

log = logging.getLogger(__name__)

# "litellm.BadRequestError: OllamaException - " and the like, before the reason itself.
INTERNAL_PREFIX = re.compile(r"^(?:litellm\.\w+(?:Error|Exception):\s*|\w+(?:Error|Exception)\s*[-:]\s*)+")
MAX_REASON_CHARS = 300


def _raw_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and detail.get("message"):
            return str(detail["message"])
    return str(exc.message)


def _reason(exc: openai.APIStatusError) -> str:
    """The proxy's reason without LiteLLM's class names, model group lists and tracebacks."""
    first = _raw_message(exc).strip().split("\n", 1)[0]
    first = first.split("Received Model Group=", 1)[0]
    reason = INTERNAL_PREFIX.sub("", first).strip().rstrip(".")
    return reason[:MAX_REASON_CHARS] or "no reason given"


@asynccontextmanager
async def upstream_errors() -> AsyncIterator[None]:
    try:
        yield
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise ProxyUnavailable(f"the LiteLLM proxy is unreachable ({type(exc).__name__}); try again shortly") from exc
    except openai.APIStatusError as exc:
        log.warning("the proxy answered %s: %s", exc.status_code, _raw_message(exc))
        raise _domain_error(exc) from exc


def _error_type(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    detail = body.get("error", body) if isinstance(body, dict) else None
    return str(detail["type"]) if isinstance(detail, dict) and detail.get("type") else None


def _domain_error(exc: openai.APIStatusError) -> Exception:
    status, kind = exc.status_code, _error_type(exc)
    # The hub's answers about the person a request acts for (hub/errors.py): theirs to read, in their words.
    if kind == "account_disabled":
        return AccountKeyRevoked("your account's proxy key is revoked (the account was disabled): ask an admin")
    if kind == "key_model_access_denied":
        return ModelNotAllowed(f"{_reason(exc)}; an admin can allow more models on the Admin page")
    if kind == "budget_exceeded":
        return BudgetExceeded(f"{_reason(exc)}; an admin can raise your budget on the Admin page")
    if isinstance(exc, openai.AuthenticationError):
        return UpstreamError("the proxy rejected the agent host's key (AGENT_HOST_PROXY_KEY)")
    if isinstance(exc, openai.NotFoundError) or (status == 400 and _is_unknown_model(exc)):
        return ModelNotFound(f"the proxy does not serve that model: {_reason(exc)}")
    if status in (502, 503, 504):
        return ProxyUnavailable(f"the proxy cannot reach a model right now ({status}); try again shortly")
    if 400 <= status < 500 and status != 429:
        return BadUpstreamRequest(f"the proxy refused the request ({status}): {_reason(exc)}")
    if status == 429:
        return ProxyUnavailable(f"the proxy is rate limiting this key (429): {_reason(exc)}")
    return UpstreamError(f"the proxy failed on this request ({status}); its log has the details")


def _is_unknown_model(exc: openai.APIStatusError) -> bool:
    message = _raw_message(exc).lower()
    return "invalid model name" in message or "model not found" in message
