"""A scripted fake model for agent tests: a real OpenAI-compatible HTTP server replaying scripted replies.

model = ScriptedModel([call("calculator", expression="2+2"), say("It is 4.")])
with model.serving() as base_url:      # http://127.0.0.1:<port>/v1, streaming and not
    ...                                  # model.requests holds every request body it received

Only the LLM is faked: the agent host, its tools, PostgreSQL and the HTTP path are real.
"""

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from devstack.probe import free_port, port_in_use
from procs import scaled


@dataclass
class Reply:
    content: str = ""
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    # Seconds to wait before answering: a slow model.
    delay: float = 0.0


def say(content: str, delay: float = 0.0) -> Reply:
    return Reply(content=content, delay=delay)


def call(name: str, arguments: dict[str, Any] | str | None = None, content: str = "", **kwargs: Any) -> Reply:
    """A reply with one tool call; arguments as keywords, a dict, or a raw (possibly broken) JSON string."""
    return Reply(content=content, tool_calls=[(name, arguments if arguments is not None else kwargs)])


def calls(*pairs: tuple[str, dict[str, Any]]) -> Reply:
    return Reply(tool_calls=list(pairs))


class ScriptedModel:
    """Answers POST /v1/chat/completions with the next scripted reply; records every request body."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions", response_model=None)(self._complete)
        self.app.get("/v1/model/info")(self._model_info)

    def script(self, replies: list[Reply]) -> None:
        """Replaces what is left of the script and forgets the requests seen so far."""
        self.replies = list(replies)
        self.requests.clear()

    async def _model_info(self) -> dict[str, Any]:
        """The proxy's model list, for a host's chat turns: the scripted model answers as `fake-model`."""
        return {"data": [{"model_name": "fake-model", "model_info": {"max_input_tokens": 8192}}]}

    async def _complete(self, request: Request) -> JSONResponse | StreamingResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.replies:
            return JSONResponse({"error": {"message": "the script has no more replies"}}, status_code=500)
        reply = self.replies.pop(0)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        model = body.get("model", "fake")
        if body.get("stream"):
            return StreamingResponse(self._chunks(model, reply), media_type="text/event-stream")
        return JSONResponse(self._completion(model, reply))

    @staticmethod
    def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for name, args in reply.tool_calls
        ]

    def _completion(self, model: str, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(reply)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    async def _chunks(self, model: str, reply: Reply) -> AsyncIterator[str]:
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk", "created": 0}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return f"data: {json.dumps({**head, 'model': model, 'choices': [choice]})}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        text = reply.content
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]) if text else ():
            yield chunk({"content": piece})
        if reply.tool_calls:
            calls = [{"index": i, **tool_call} for i, tool_call in enumerate(self._tool_calls(reply))]
            yield chunk({"tool_calls": calls})
        yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
        yield "data: [DONE]\n\n"

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Runs the server in a thread on a free port; yields its OpenAI base URL."""
        port = free_port()
        # A scripted delay outlives its client (a run cut by its time limit): shut down without waiting for it.
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=0.5
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + scaled(10)
        while not port_in_use(port):
            if time.monotonic() > deadline:
                raise RuntimeError("the scripted model server did not start")
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def tool_messages(request: dict[str, Any]) -> list[str]:
    """The tool results a model request carried, in order."""
    return [str(m.get("content")) for m in request["messages"] if m.get("role") == "tool"]


def offered_tools(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools", [])]


def write_agents_file(path: Path, agents: list[dict[str, Any]], default_agent: str | None = None) -> Path:
    config = {"default_model": "fake-model", "default_agent": default_agent or agents[0]["name"], "agents": agents}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def events_of(kind: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]
