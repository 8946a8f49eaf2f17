"""Agent runs on the agent host: the named agents (GET /agents) and a run's stream of step events (POST /agents/run)."""

import json
import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from chat_ui.config import Settings
from chat_ui.rag_client import HostProblem, error_of


class AgentInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    description: str = ""
    kind: str = "tools"
    model: str | None = None
    tools: list[str] = []


def _headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.chat_api_key}"}


def list_agents(settings: Settings) -> list[AgentInfo]:
    """The host's named agents; raises HostProblem with a readable reason."""
    url = f"{settings.agent_host_url.rstrip('/')}/agents"
    try:
        response = httpx.get(url, headers=_headers(settings), timeout=settings.probe_timeout * 2)
    except httpx.HTTPError as exc:
        raise HostProblem(f"cannot reach the agent host ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise error_of(response)
    body = response.json()
    items = body.get("agents", []) if isinstance(body, dict) else body
    return [AgentInfo.model_validate(item) for item in items]


@dataclass
class AgentReply:
    """A streamed agent run: its events (text deltas left out once folded into `draft`), the answer and timings."""

    agent: str | None = None  # None: the host's router picks
    started: float = field(default_factory=time.perf_counter)
    events: list[dict[str, Any]] = field(default_factory=list)
    draft: str = ""  # what the model is writing in the current step
    answer: str | None = None
    model: str = ""
    first_text_at: float | None = None
    ended: float | None = None
    stopped: bool = False
    error: Exception | None = None

    def absorb(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "delta":
            if self.first_text_at is None:
                self.first_text_at = time.perf_counter()
            self.draft += str(event.get("text", ""))
            return  # the step's thought or the answer repeats the text in full
        if kind in ("thought", "tool_call"):
            self.draft = ""
        if kind == "start":
            self.agent = str(event.get("agent", self.agent))
            self.model = str(event.get("model", ""))
        elif kind == "answer":
            self.answer = str(event.get("content", ""))
        elif kind == "error":
            error = event.get("error") or {}
            self.error = HostProblem(str(error.get("message", "the agent run failed")), kind=str(error.get("type", "")))
        self.events.append(event)

    @property
    def text(self) -> str:
        return self.answer if self.answer is not None else self.draft


_DONE = object()


def _problem(exc: Exception) -> Exception:
    if isinstance(exc, httpx.TimeoutException):
        return HostProblem("the agent host did not answer in time")
    if isinstance(exc, httpx.HTTPError):
        return HostProblem(f"cannot reach the agent host ({type(exc).__name__}): start it with `make up`")
    return exc


def sse_events(lines: Generator[str, None, None] | Any) -> Generator[dict[str, Any], None, None]:
    """The JSON objects of an SSE stream's `data:` lines."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if not data or data == "[DONE]":
            continue
        try:
            event = json.loads(data)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def stream_agent_run(
    settings: Settings, body: dict[str, Any], reply: AgentReply, poll: float = 0.05
) -> Generator[dict[str, Any] | None, None, None]:
    """Yields each event as it arrives, and None every `poll` seconds while the host is silent.

    Read on a thread like backend.stream_reply: a caller that stops iterating (Stop) closes the response,
    and the host ends the run.
    """
    events: queue.Queue[object] = queue.Queue()
    cancelled = threading.Event()
    holder: dict[str, httpx.Response] = {}

    def read() -> None:
        try:
            timeout = httpx.Timeout(settings.request_timeout, connect=settings.probe_timeout * 2)
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream(
                    "POST",
                    f"{settings.agent_host_url.rstrip('/')}/agents/run",
                    json=body,
                    headers={**_headers(settings), "Accept": "text/event-stream"},
                ) as response,
            ):
                holder["response"] = response
                if response.status_code != 200:
                    response.read()
                    events.put(error_of(response))
                    return
                for event in sse_events(response.iter_lines()):
                    if cancelled.is_set():
                        break
                    events.put(event)
        except Exception as exc:  # closed by Stop, or the host went away: the page explains the latter
            if not cancelled.is_set():
                events.put(_problem(exc))
        finally:
            events.put(_DONE)

    threading.Thread(target=read, name="agent-stream", daemon=True).start()
    finished = False
    try:
        while True:
            try:
                item = events.get(timeout=poll)
            except queue.Empty:
                yield None
                continue
            if item is _DONE:
                finished = True
                return
            if isinstance(item, Exception):
                reply.error = item
                continue
            assert isinstance(item, dict)
            reply.absorb(item)
            yield item
    finally:
        reply.ended = time.perf_counter()
        if not finished:
            cancelled.set()
            reply.stopped = reply.error is None
            response = holder.get("response")
            if response is not None:
                response.close()
