"""Talking to the model backend (the proxy, or the agent host) through the OpenAI SDK: models, chat, titles."""

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import openai
import streamlit as st
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, Field

from chat_ui.config import Settings
from chat_ui.people import Credentials
from chat_ui.rag_models import Citation
from chat_ui.schemas import Facts, GenerationParams
from chat_ui.streaming import Feed, relay

TITLE_PROMPT = "Write a title of at most six words for this conversation. Reply with the title only."


class ModelOption(BaseModel):
    id: str
    served: bool
    note: str = ""

    def label(self) -> str:
        return self.id if self.served else f"{self.id} (unavailable{': ' + self.note if self.note else ''})"


class ModelList(BaseModel):
    options: list[ModelOption]
    problem: str = ""  # why the list could not be read, when it could not
    read_at: float = Field(default_factory=time.monotonic)

    def served(self) -> set[str]:
        return {option.id for option in self.options if option.served}

    def waiting(self) -> bool:
        """Some listed model is not served yet (a pull may be under way, or the proxy's next check due)."""
        return any(not option.served for option in self.options)


@st.cache_resource(show_spinner=False, max_entries=256)
def _client(base_url: str, api_key: str, headers: tuple[tuple[str, str], ...], timeout: float) -> openai.OpenAI:
    """One client per backend and person: its connection pool saves a TCP setup on every message."""
    return openai.OpenAI(
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_retries=0,  # the proxy retries; a second layer here would only hide a dead backend longer
        default_headers=dict(headers) or None,
    )


def chat_client(settings: Settings, credentials: Credentials, timeout: float | None = None) -> openai.OpenAI:
    """The one OpenAI client factory: the agent host with the person's sign-in token, or the proxy with the UI's
    service key naming the person (people.backend_credentials), so the proxy counts the request as theirs."""
    base_url = settings.agent_host_url.rstrip("/") + "/v1" if settings.agent_host_url else settings.litellm_base_url
    headers = tuple(sorted(credentials.headers.items()))
    return _client(base_url.rstrip("/"), credentials.api_key, headers, timeout or settings.request_timeout)


def runtime_models(runtime_urls: list[str], timeout: float) -> set[str] | None:
    """Every model name the runtimes have right now, or None when none of them answers."""
    names: set[str] = set()
    answered = False
    for url in runtime_urls:
        try:
            reply = httpx.get(f"{url}/api/tags", timeout=timeout)
            reply.raise_for_status()
        except httpx.HTTPError:
            continue
        answered = True
        names.update(str(model.get("name", "")) for model in reply.json().get("models", []))
    return names if answered else None


def embedding_models(client: openai.OpenAI) -> set[str]:
    """The proxy's groups of `mode: embedding` (LiteLLM's /model/info), which a chat cannot use; none when it
    does not answer."""
    try:
        info: Any = client.get("/model/info", cast_to=object)
    except openai.APIError:
        return set()
    return {
        str(entry.get("model_name"))
        for entry in info.get("data", [])
        if isinstance(entry, dict) and (entry.get("model_info") or {}).get("mode") == "embedding"
    }


def list_models(settings: Settings, credentials: Credentials) -> ModelList:
    """The backend's models, each marked served or unavailable; never raises."""
    client = chat_client(settings, credentials, timeout=settings.probe_timeout * 3)
    try:
        configured = [model.id for model in client.models.list()]
    except openai.APIError as exc:
        return ModelList(options=[], problem=f"cannot list models: {type(exc).__name__}")
    if not settings.agent_host_url:  # the agent host lists chat models only; the proxy lists embedding ones too
        embedding = embedding_models(client)
        configured = [model_id for model_id in configured if model_id not in embedding]
    try:
        # LiteLLM lists only the models whose backend passed its background health check.
        healthy = {model.id for model in client.models.list(extra_query={"healthy_only": "true"})}
    except openai.APIError:
        healthy = set(configured)
    have = runtime_models(settings.runtime_urls, settings.probe_timeout) if settings.runtime_urls else None
    options = []
    for model_id in configured:
        if model_id not in healthy:
            options.append(ModelOption(id=model_id, served=False, note="failing its health check"))
        elif have is not None and model_id not in have:
            options.append(ModelOption(id=model_id, served=False, note="no runtime has it"))
        else:
            options.append(ModelOption(id=model_id, served=True))
    options.sort(key=lambda option: (not option.served, option.id))
    return ModelList(options=options)


def chat_messages(
    params: GenerationParams, history: list[tuple[str, str]], system: bool = True
) -> list[ChatCompletionMessageParam]:
    """The request's messages; `system=False` where the agent-host session holds the system prompt."""
    messages: list[dict[str, str]] = [{"role": "system", "content": params.system_prompt}]
    if not system or not params.system_prompt.strip():
        messages = []
    messages += [{"role": role, "content": content} for role, content in history]
    return cast(list[ChatCompletionMessageParam], messages)


@dataclass
class Reply:
    """A streamed answer: iterate `pieces()`, then read `text` and `facts`."""

    params: GenerationParams
    started: float = field(default_factory=time.perf_counter)
    text: str = ""
    model: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    first_token_at: float | None = None
    ended: float | None = None
    stopped: bool = False
    error: Exception | None = None
    context: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    # What the agent host's first chunk says the answer may cite (None: no retrieval was asked for).
    citations: list[Citation] | None = None

    def facts(self) -> Facts:
        end = self.ended or time.perf_counter()
        ttft = None if self.first_token_at is None else (self.first_token_at - self.started) * 1000
        return Facts(
            model=self.model or self.params.model,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            ttft_ms=ttft,
            total_ms=(end - self.started) * 1000,
            stopped=self.stopped,
            cached=self.cached,
            context_tokens=self.context.get("prompt-tokens"),
            context_window=self.context.get("window"),
            summarised_messages=self.context.get("summarised-messages"),
            trimmed_messages=self.context.get("trimmed-messages"),
        )


def stream_reply(
    client: openai.OpenAI,
    messages: list[ChatCompletionMessageParam],
    reply: Reply,
    poll: float = 0.05,
    extra_body: dict[str, Any] | None = None,
) -> Generator[str | None, None, None]:
    """Yields text pieces as they arrive, and None every `poll` seconds while waiting (streaming.relay).

    A caller that stops iterating (Stop, a page rerun) closes the stream: the backend stops generating.
    """
    params = reply.params

    def read(feed: Feed) -> None:
        raw = client.chat.completions.with_raw_response.create(
            model=params.model,
            messages=messages,
            temperature=params.temperature,
            max_tokens=params.max_tokens,
            top_p=params.top_p,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=extra_body or None,
        )
        reply.context = context_facts(raw.headers)
        # The proxy's own header (phase 1), or the agent host's word for it (phase 2).
        reply.cached = bool(raw.headers.get(CACHE_HIT_HEADER)) or reply.context.get("cached") == 1
        stream = raw.parse()
        feed.closing(stream.close)
        for chunk in stream:
            if feed.cancelled.is_set():
                break  # the answer came back after Stop: close it instead of reading it all
            feed.put(chunk)

    items = relay(read, poll, "chat-stream")
    finished = False
    try:
        for item in items:
            if item is None:
                yield None
            elif isinstance(item, Exception):
                reply.error = item
            else:
                text = _absorb(reply, item)
                if text:
                    yield text
        finished = True
    finally:
        reply.ended = time.perf_counter()
        if not finished:
            items.close()
            reply.stopped = reply.error is None


# LiteLLM sends it with an answer from its response cache only.
CACHE_HIT_HEADER = "x-litellm-cache-key"


def context_facts(headers: httpx.Headers) -> dict[str, int]:
    """The agent host's x-context-* headers as numbers (none from the proxy)."""
    facts = {}
    for name, value in headers.items():
        if name.lower().startswith("x-context-") and value.isdigit():
            facts[name.lower().removeprefix("x-context-")] = int(value)
    return facts


def _absorb(reply: Reply, chunk: object) -> str:
    extra = getattr(chunk, "model_extra", None) or {}
    if "citations" in extra:  # the agent host's extension, on the first chunk of a RAG answer
        reply.citations = [Citation.model_validate(item) for item in extra["citations"] or []]
    model = getattr(chunk, "model", None)
    if model:
        reply.model = str(model)
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        reply.tokens_in = usage.prompt_tokens
        reply.tokens_out = usage.completion_tokens
    text = ""
    for choice in getattr(chunk, "choices", None) or []:
        text += getattr(choice.delta, "content", None) or ""
    if text:
        if reply.first_token_at is None:
            reply.first_token_at = time.perf_counter()
        reply.text += text
    return text


def fallback_title(first_message: str) -> str:
    words = " ".join(first_message.split()).split(" ")
    title = " ".join(words[:6])
    return (title[:60] + "…") if len(title) > 60 or len(words) > 6 else title or "New chat"


def clean_title(text: str) -> str | None:
    line = next((line for line in text.strip().splitlines() if line.strip()), "")
    line = line.strip().strip("\"'`*#").removeprefix("Title:").strip().strip("\"'")
    if not line or len(line) > 80 or len(line.split()) > 10:
        return None
    return line


def generate_title(client: openai.OpenAI, model: str, question: str, answer: str) -> str:
    """A title from the first exchange, by the model; the first words of the question if that fails."""
    try:
        completion = client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": TITLE_PROMPT},
                {"role": "user", "content": f"User: {question[:1000]}\nAssistant: {answer[:1000]}"},
            ],
            max_tokens=16,
            temperature=0.2,
            timeout=15,
        )
    except openai.APIError:
        return fallback_title(question)
    return clean_title(completion.choices[0].message.content or "") or fallback_title(question)
