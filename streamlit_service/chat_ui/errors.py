"""Failures of a chat request, said so a person understands them and knows what to do."""

import openai
from pydantic import BaseModel


class ChatProblem(BaseModel):
    """One line of what went wrong and one of what to do; shown in the chat, never with a secret in it."""

    kind: str
    message: str
    action: str


def _server_text(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return exc.message


def _looks_like(text: str, *needles: str) -> bool:
    lowered = text.lower()
    return any(needle in lowered for needle in needles)


def explain(exc: Exception, model: str, base_url: str, secret: str = "", host: bool = False) -> ChatProblem:
    """Maps an OpenAI SDK error (from the proxy, or the agent host with `host`) to a ChatProblem."""
    if host and isinstance(exc, openai.APIStatusError) and exc.status_code == 401:
        problem = ChatProblem(
            kind="auth",
            message=f"The agent host no longer accepts your sign-in (401). {_server_text(exc)}",
            action="Sign in again (reload the page); your message is kept below.",
        )
    else:
        problem = _explain(exc, model, base_url)
    if secret and secret in problem.message:
        problem.message = problem.message.replace(secret, "***")
    return problem


def _explain(exc: Exception, model: str, base_url: str) -> ChatProblem:
    if isinstance(exc, openai.APITimeoutError):
        return ChatProblem(
            kind="timeout",
            message=f"The proxy at {base_url} did not answer in time.",
            action="The model runtime may be busy or stuck: check `make status`, then resend.",
        )
    if isinstance(exc, openai.APIConnectionError):
        return ChatProblem(
            kind="proxy_down",
            message=f"Cannot reach the proxy at {base_url}.",
            action="Start the stack with `make up` (or check `make status`); your message is kept, resend it then.",
        )
    if not isinstance(exc, openai.APIStatusError):
        return ChatProblem(
            kind="unexpected", message=f"{type(exc).__name__}: {exc}", action="Resend, or check the UI log."
        )
    text = _server_text(exc)
    code = exc.status_code
    # A person's own limits (their proxy key's budget, models, rpm) come before the UI's key problems.
    if _looks_like(text, "budget"):
        return ChatProblem(
            kind="budget",
            message=f"Your budget is used up. {text}",
            action="Ask an admin to raise your budget (Admin page); nothing else is affected.",
        )
    if code == 401 and _looks_like(text, "disabled", "no proxy key"):
        return ChatProblem(
            kind="forbidden",
            message=f"Your account's proxy key is revoked. {text}",
            action="Ask an admin to enable your account.",
        )
    if code == 401:
        return ChatProblem(
            kind="auth",
            message="The proxy rejected the UI's API key (401).",
            action="Set a valid LITELLM_API_KEY in streamlit_service/.env and restart the UI.",
        )
    if code == 403:
        return ChatProblem(
            kind="forbidden",
            message=f"You may not use model '{model}' (403). {text}",
            action="Pick a model you are allowed, or ask an admin to allow this one (Admin page).",
        )
    if code == 429:
        return ChatProblem(
            kind="rate_limit",
            message=f"Rate limit reached (429). {text}",
            action="Wait a minute and resend.",
        )
    if _looks_like(text, "context length", "context window", "maximum context", "too long", "exceed_context"):
        return ChatProblem(
            kind="context",
            message="The conversation is too long for this model's context window.",
            action="Start a new conversation, shorten your message, or lower max tokens.",
        )
    if code == 404 or _looks_like(text, "not found", "invalid model"):
        return ChatProblem(
            kind="model_missing",
            message=f"Model '{model}' is not served right now. {text[:200]}",
            action="Refresh the model list and pick a model marked served.",
        )
    if code >= 500:
        return ChatProblem(
            kind="backend_down",
            message=f"The model backend for '{model}' failed ({code}): {text[:200]}",
            action="Check the runtime with `make status` / `make logs`; resend once it is healthy.",
        )
    return ChatProblem(
        kind="bad_request", message=f"The request was refused ({code}): {text[:300]}", action="Adjust and resend."
    )
