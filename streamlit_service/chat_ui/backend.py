"""Talking to the model backend (the proxy, or the agent host in phase 2) through the OpenAI SDK."""

import queue
import threading
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from chat_ui.config import Settings
from chat_ui.rag_models import Citation
from chat_ui.schemas import Facts, GenerationParams

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


def make_client(settings: Settings, timeout: float | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=settings.chat_base_url,
        api_key=settings.chat_api_key,
        timeout=timeout or settings.request_timeout,
        max_retries=0,  # the proxy retries; a second layer here would only hide a dead backend longer
    )


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


def list_models(settings: Settings) -> ModelList:
    """The backend's models, each marked served or unavailable; never raises."""
    client = make_client(settings, timeout=settings.probe_timeout * 3)
    try:
        configured = [model.id for model in client.models.list()]
    except openai.APIError as exc:
        return ModelList(options=[], problem=f"cannot list models: {type(exc).__name__}")
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


def chat_messages(params: GenerationParams, history: list[tuple[str, str]]) -> list[ChatCompletionMessageParam]:
    messages: list[dict[str, str]] = [{"role": "system", "content": params.system_prompt}]
    if not params.system_prompt.strip():
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
            context_tokens=self.context.get("prompt-tokens"),
            context_window=self.context.get("window"),
            summarised_messages=self.context.get("summarised-messages"),
            trimmed_messages=self.context.get("trimmed-messages"),
        )


_DONE = object()


def stream_reply(
    client: openai.OpenAI,
    params: GenerationParams,
    history: list[tuple[str, str]],
    reply: Reply,
    poll: float = 0.05,
    session_id: str | None = None,
    extra_body: dict[str, Any] | None = None,
) -> Generator[str | None, None, None]:
    """Yields text pieces as they arrive, and None every `poll` seconds while waiting.

    The HTTP stream is read on a thread so the caller keeps control while the backend is silent: a
    caller that stops iterating (Stop, a page rerun) closes the stream in `finally`, which closes the
    connection, and the proxy and the runtime cancel the generation.
    """
    pieces: queue.Queue[object] = queue.Queue()
    holder: dict[str, openai.Stream[object]] = {}
    cancelled = threading.Event()
    body = {**(extra_body or {}), **({"session_id": session_id} if session_id else {})}

    def read() -> None:
        try:
            # With an agent-host session the host keeps the history: only the new question is sent.
            raw = client.chat.completions.with_raw_response.create(
                model=params.model,
                messages=chat_messages(params, history[-1:] if session_id else history),
                temperature=params.temperature,
                max_tokens=params.max_tokens,
                top_p=params.top_p,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=body or None,
            )
            reply.context = context_facts(raw.headers)
            stream = raw.parse()
            holder["stream"] = stream  # type: ignore[assignment]
            for chunk in stream:
                if cancelled.is_set():
                    break  # the answer came back after Stop: close it instead of reading it all
                pieces.put(chunk)
            if cancelled.is_set():
                stream.close()
        except Exception as exc:  # handed to the page, which explains it
            pieces.put(exc)
        finally:
            pieces.put(_DONE)

    reader = threading.Thread(target=read, name="chat-stream", daemon=True)
    reader.start()
    finished = False
    try:
        while True:
            try:
                item = pieces.get(timeout=poll)
            except queue.Empty:
                yield None
                continue
            if item is _DONE:
                finished = True
                return
            if isinstance(item, Exception):
                if not reply.stopped:
                    reply.error = item
                continue
            text = _absorb(reply, item)
            if text:
                yield text
    finally:
        reply.ended = time.perf_counter()
        if not finished:
            cancelled.set()
            reply.stopped = reply.error is None
            stream = holder.get("stream")
            if stream is not None:
                stream.close()


def context_facts(headers: httpx.Headers) -> dict[str, int]:
    """The agent host's x-context-* headers as numbers (none from the proxy)."""
    facts = {}
    for name, value in headers.items():
        if name.lower().startswith("x-context-") and value.isdigit():
            facts[name.lower().removeprefix("x-context-")] = int(value)
    return facts


HOST_SESSION_NAMESPACE = uuid.UUID("6a0c1b2e-5d7f-4e43-9b1a-1f0e2d3c4b5a")


def host_session_id(conversation_id: int) -> str:
    """The agent-host session that mirrors a UI conversation: derived, so no mapping table is needed."""
    return str(uuid.uuid5(HOST_SESSION_NAMESPACE, f"ui-conversation-{conversation_id}"))


def ensure_host_session(settings: Settings, conversation_id: int, title: str) -> str | None:
    """Creates the conversation's session on the agent host unless it exists; None if that fails."""
    session_id = host_session_id(conversation_id)
    try:
        response = httpx.post(
            f"{settings.agent_host_url.rstrip('/')}/sessions",
            json={"id": session_id, "title": title},
            headers={"Authorization": f"Bearer {settings.chat_api_key}"},
            timeout=settings.probe_timeout * 3,
        )
    except httpx.HTTPError:
        return None
    return session_id if response.status_code in (201, 409) else None


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
