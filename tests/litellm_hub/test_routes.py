"""A virtual key reaches the OpenAI-compatible model API only: every other route LiteLLM mounts refuses it.

The routes come from LiteLLM's own app, so a route a LiteLLM upgrade adds is walked too. One request per
route and method, with the key's own model in the body and the path: only the route rule can refuse it.
"""

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from hub_support import SMOLLM, bearer, chat_body, create_key
from starlette.routing import Mount, Route, WebSocketRoute
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from hub.auth import VIRTUAL_KEY_ROUTES
from procs import MASTER_KEY, scaled

PATH_PARAM = re.compile(r"\{([^}:]+)(:[^}]+)?\}")
# 401/403: refused by the hub; 404/405: nothing answers that path or method for anyone.
REFUSED = {401, 403, 404, 405}
ROUTE_REFUSAL = "virtual keys may call the model API only"
MADE_UP_KEY = "sk-no-such-key-0123456789"


@dataclass(frozen=True)
class Call:
    method: str
    template: str
    path: str


def _fill(template: str) -> str:
    """The path with dummy values; a `model` parameter names the key's own model."""

    def value(match: re.Match[str]) -> str:
        name, converter = match.group(1), match.group(2) or ""
        if "model" in name:
            return SMOLLM
        return "v1/x" if converter == ":path" else "x"

    return PATH_PARAM.sub(value, template)


def mounted_calls() -> tuple[list[Call], list[str]]:
    """Every (method, path) LiteLLM's proxy app serves over HTTP, and its WebSocket paths."""
    from litellm.proxy.proxy_server import app

    calls, websockets = [], []
    # FastAPI keeps included routers as one entry each in app.routes: iter_route_contexts flattens them.
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, WebSocketRoute):
            websockets.append(path)
        elif isinstance(route, Route):
            for method in sorted((context.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
                calls.append(Call(method, path, _fill(path)))
        elif isinstance(route, Mount):
            calls.append(Call("GET", path, _fill(path).rstrip("/") + "/"))
    return calls, websockets


@pytest.fixture(scope="module")
def restricted_key(database_url: str) -> str:
    return create_key(database_url, "routes-walk", "--models", SMOLLM)


def _is_model_answer(answer: httpx.Response) -> bool:
    if "chat.completion.chunk" in answer.text:  # a stream
        return True
    try:
        body = answer.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    data = body.get("data")
    embeddings = isinstance(data, list) and any(isinstance(item, dict) and "embedding" in item for item in data)
    return isinstance(body.get("choices"), list) or embeddings


def _send(client: httpx.Client, call: Call, headers: dict[str, str]) -> httpx.Response:
    body = chat_body() if call.method in ("POST", "PUT", "PATCH") else None
    return client.request(call.method, call.path, headers=headers, json=body)


def test_a_virtual_key_is_refused_on_every_route_outside_the_model_api(proxy: str, restricted_key: str) -> None:
    calls, _ = mounted_calls()
    outside = [call for call in calls if call.template.rstrip("/") not in VIRTUAL_KEY_ROUTES]
    assert len(outside) > 100, "LiteLLM's routes were not found"
    with httpx.Client(base_url=proxy, timeout=scaled(30)) as client:
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda call: _send(client, call, bearer(restricted_key)), outside))
        reached, keyless = [], []
        for call, answer in zip(outside, answers, strict=True):
            assert not _is_model_answer(answer), (call, answer.text[:300])
            if answer.status_code in REFUSED:
                continue
            # Not refused: only a route that answers a made-up key the same way (a public route, or one with
            # credentials of its own such as Lens workers) may do that: the virtual key gains nothing there.
            made_up = _send(client, call, bearer(MADE_UP_KEY))
            if made_up.status_code != answer.status_code:
                reached.append(f"{call.method} {call.template}: {answer.status_code} {answer.text[:120]}")
            else:
                keyless.append(f"{call.method} {call.template} {answer.status_code}")
    refused_by_route = sum(ROUTE_REFUSAL in answer.text for answer in answers)
    print(
        f"{len(outside)} route/method pairs outside the model API; {refused_by_route} refused by the route rule; "
        f"answering any key alike: {', '.join(keyless)}"
    )
    assert not reached, "\n".join(reached)


def test_the_master_key_keeps_the_admin_routes(client: httpx.Client) -> None:
    assert client.get("/key/list", headers=bearer(MASTER_KEY)).status_code != 403
    assert client.get("/active/callbacks", headers=bearer(MASTER_KEY)).status_code == 200


@pytest.mark.parametrize("path", sorted(VIRTUAL_KEY_ROUTES))
def test_a_virtual_key_reaches_each_route_of_the_model_api(
    client: httpx.Client, restricted_key: str, path: str
) -> None:
    if path.endswith(("/models", "/model/info")):
        answer = client.get(path, headers=bearer(restricted_key))
        assert answer.status_code == 200, answer.text
    elif path.endswith("/chat/completions"):
        answer = client.post(path, headers=bearer(restricted_key), json=chat_body())
        assert answer.status_code == 200, answer.text
    else:  # completions and embeddings: no embedding model is configured, the prompt API may refuse the body
        body = {"model": SMOLLM, "prompt": "Hi", "max_tokens": 2, "input": "Hi"}
        answer = client.post(path, headers=bearer(restricted_key), json=body)
        assert ROUTE_REFUSAL not in answer.text, answer.text
    other_model = client.post(path, headers=bearer(restricted_key), json=chat_body("phi:latest"))
    if path.endswith(("completions", "embeddings")):
        assert other_model.status_code == 403, other_model.text  # and the model allow-list still holds


def _websocket_refused(url: str, key: str) -> str | None:
    """None when the socket is refused or closed before anything is sent to it, else what came back."""
    try:
        with connect(url, additional_headers=bearer(key), open_timeout=scaled(10)) as socket:
            message = socket.recv(timeout=scaled(10))
    except (InvalidStatus, ConnectionClosed):
        return None
    except TimeoutError:
        return "the socket stayed open"
    return f"a message: {str(message)[:120]}"


def test_a_virtual_key_is_refused_on_every_websocket_route(proxy: str, restricted_key: str) -> None:
    _, websockets = mounted_calls()
    assert websockets, "LiteLLM's WebSocket routes were not found"
    base = proxy.replace("http://", "ws://", 1)
    answers = {path: _websocket_refused(f"{base}{_fill(path)}?model={SMOLLM}", restricted_key) for path in websockets}
    assert {path: answer for path, answer in answers.items() if answer is not None} == {}
