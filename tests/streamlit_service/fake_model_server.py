"""A scripted OpenAI-compatible model server (and Ollama /api/tags) for the UI's tests: the only fake."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devstack.probe import free_port


@dataclass
class Script:
    pieces: list[str] = field(default_factory=lambda: ["Hello", " from", " the", " fake", " model."])
    delay: float = 0.0  # seconds between pieces
    error: tuple[int, dict[str, Any]] | None = None  # (status, body) answered instead


@dataclass
class FakeModelServer:
    models: list[str] = field(default_factory=lambda: ["smollm2:135m", "qwen2.5:0.5b"])
    healthy: list[str] | None = None  # None: every model passes the proxy's health check
    runtime_has: list[str] = field(default_factory=lambda: ["smollm2:135m"])
    master_key: str = "sk-fake-master"
    title: str = "Greeting the fake model"
    script: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Each POST's headers, lower-cased names (the person header the UI's service key sends).
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnects: int = 0
    finished_streams: int = 0
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _json(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                auth = self.headers.get("Authorization", "")
                if parts.path == "/v1/models":
                    names = server.models
                    if parse_qs(parts.query).get("healthy_only") == ["true"] and server.healthy is not None:
                        names = server.healthy
                    self._json(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]})
                elif parts.path == "/api/tags":
                    self._json(200, {"models": [{"name": n} for n in server.runtime_has]})
                elif parts.path == "/active/callbacks":
                    ok = auth == f"Bearer {server.master_key}"
                    self._json(200 if ok else 403, {} if ok else {"error": {"message": "use the master key"}})
                else:
                    self._json(200, {"status": "ok"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(body)
                server.headers.append({name.lower(): value for name, value in self.headers.items()})
                script = server.script
                if script.error is not None:
                    self._json(*script.error)
                    return
                if not body.get("stream"):
                    message = {"role": "assistant", "content": server.title}
                    choice = {"index": 0, "message": message, "finish_reason": "stop"}
                    self._json(
                        200, {"id": "t", "object": "chat.completion", "model": body["model"], "choices": [choice]}
                    )
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for piece in script.pieces:
                        time.sleep(script.delay)
                        self._event({"choices": [{"index": 0, "delta": {"content": piece}}]}, body)
                    usage = {"prompt_tokens": 12, "completion_tokens": len(script.pieces), "total_tokens": 0}
                    self._event({"choices": [], "usage": usage}, body)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                    server.finished_streams += 1
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnects += 1
                self.close_connection = True

            def _event(self, payload: dict[str, Any], body: dict[str, Any]) -> None:
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": body["model"], **payload}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self.script = Script()
        self.requests.clear()
        self.headers.clear()
        self.healthy = None
        self.disconnects = self.finished_streams = 0
