"""Two agent host processes on one PostgreSQL database agree: the MCP servers added or removed through either,
and a session both write at once (only the model is fake: a scripted server that echoes the user's message)."""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from agent_support import Reply, ScriptedModel, call, say, write_agents_file
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from host_support import auth, start_host
from mcp_support import (
    ADMIN_KEY,
    admin_auth,
    files_server_entry,
    mcp_host_env,
    mcp_http_server,  # noqa: F401  # a fixture
    saved_servers,
    wait_for_server,
    write_servers_file,
)

from procs import ManagedProcess, PostgresInstance, scaled

MODEL = "fake-model"
TURNS = 10  # per thread; two threads per replica


class EchoModel(ScriptedModel):
    """The scripted model; with nothing scripted, it answers a turn with `echo: <the user's last message>`, so
    every stored answer names the message it answers."""

    async def _complete(self, request: Request) -> JSONResponse | StreamingResponse:
        if self.replies:
            return await super()._complete(request)
        body = await request.json()
        asked = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        return JSONResponse(self._completion(body.get("model", MODEL), Reply(content=f"echo: {asked}")))


@pytest.fixture(scope="module")
def model_server() -> Iterator[tuple[EchoModel, str]]:
    echo = EchoModel([])
    with echo.serving() as url:
        yield echo, url


@pytest.fixture(scope="module")
def model(model_server: tuple[EchoModel, str]) -> EchoModel:
    return model_server[0]


@pytest.fixture(scope="module")
def database_url(postgres: PostgresInstance) -> str:
    """The replicas' one database, the module's own."""
    return postgres.new_database("replicas")


@pytest.fixture(scope="module")
def replicas(
    model_server: tuple[EchoModel, str], database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Hosts A and B on one database, with the same operator's servers file (a stdio server each runs itself)."""
    processes: list[ManagedProcess] = []
    urls = []
    for name in ("a", "b"):
        tmp = tmp_path_factory.mktemp(f"replica-{name}")
        servers = write_servers_file(tmp / "mcp.json", {"files": files_server_entry(tmp / "notes")})
        agents = write_agents_file(tmp / "agents.yaml", [{"name": "toolbox", "description": "MCP tools.",
                                                          "tools": ["extra__*", "files__*"]}])  # fmt: skip
        env = {
            **mcp_host_env(tmp, servers),
            "AGENTS_FILE": str(agents),
            "AGENT_HOST_ADMIN_KEY": ADMIN_KEY,
            "MCP_ALLOWED_HOSTS": "127.0.0.1",
        }
        process, url = start_host(model_server[1].removesuffix("/v1"), database_url, "fake-key", **env)
        processes.append(process)
        urls.append(url)
    yield urls[0], urls[1]
    for process in processes:
        process.stop()


def add_server(url: str, name: str, target: str) -> httpx.Response:
    body = {"name": name, "config": {"url": target}}
    return httpx.post(f"{url}/mcp/servers", json=body, headers=admin_auth(), timeout=scaled(60))


def race_to_add(replicas: tuple[str, str], name: str, target: str) -> dict[str, int]:
    """Adds one name through both replicas at the same moment, each with its own URL; the statuses by replica."""
    start = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def add(url: str, replica: str) -> None:
        start.wait()
        statuses[replica] = add_server(url, name, f"{target}?from={replica}").status_code

    threads = [threading.Thread(target=add, args=pair) for pair in zip(replicas, "ab", strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def listed(url: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{url}/mcp/servers", headers=auth(), timeout=scaled(30))
    response.raise_for_status()
    return {server["name"]: server for server in response.json()}


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `check` holds within the (scaled) timeout, asked every 0.1 s."""
    deadline = time.monotonic() + scaled(timeout)
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_both_replicas_run_the_operators_stdio_server_themselves(replicas: tuple[str, str]) -> None:
    for url in replicas:
        assert wait_for_server(url, "files")["source"] == "file"
        assert wait_for_server(url, "files")["status"] == "up"


def test_a_server_added_through_one_replica_is_listed_and_used_through_the_other(
    replicas: tuple[str, str],
    model: EchoModel,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    a, b = replicas
    added = add_server(a, "extra", mcp_http_server[1])
    assert added.status_code == 201, added.text
    assert "extra" in listed(b)  # B reads the saved list before it answers
    assert wait_for_server(b, "extra")["status"] == "up"
    model.script([call("extra__add", a=20, b=22), say("20 and 22 make 42.")])
    run = httpx.post(
        f"{b}/agents/run", json={"task": "Add 20 and 22", "agent": "toolbox"}, headers=auth(), timeout=scaled(60)
    )
    assert run.status_code == 200, run.text
    result = next(step for step in run.json()["steps"] if step["type"] == "tool_result")
    assert (result["name"], result["content"], result["is_error"]) == ("extra__add", "42", False)
    calls = next(tool for tool in listed(b)["extra"]["tools"] if tool["name"] == "add")["calls"]
    assert calls == 1  # B's own connection made the call


def test_a_server_removed_through_one_replica_is_gone_from_the_other(
    replicas: tuple[str, str],
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    a, b = replicas
    if "extra" not in listed(a):
        assert add_server(a, "extra", mcp_http_server[1]).status_code == 201
    assert wait_for_server(b, "extra")["status"] == "up"
    removed = httpx.delete(f"{a}/mcp/servers/extra", headers=admin_auth(), timeout=scaled(30))
    assert removed.status_code == 204
    assert httpx.get(f"{b}/mcp/servers/extra", headers=auth(), timeout=scaled(10)).status_code == 404
    assert "extra" not in listed(b)
    # The agents' tools come from the background loop, which nobody's request nudges.
    tools = lambda: httpx.get(f"{b}/agents", headers=auth(), timeout=scaled(10)).json()[0]["tools"]  # noqa: E731
    assert eventually(lambda: not any(name.startswith("extra__") for name in tools())), tools()
    assert httpx.delete(f"{b}/mcp/servers/extra", headers=admin_auth(), timeout=scaled(10)).status_code == 404


def test_one_name_added_through_both_replicas_at_once_is_added_once(
    replicas: tuple[str, str],
    database_url: str,
    mcp_http_server: tuple[ManagedProcess, str],  # noqa: F811
) -> None:
    for attempt in range(3):
        name = f"race-{attempt}"
        statuses = race_to_add(replicas, name, mcp_http_server[1])
        assert sorted(statuses.values()) == [201, 409], statuses
        winner = next(replica for replica, status in statuses.items() if status == 201)
        assert saved_servers(database_url)[name] == {"url": f"{mcp_http_server[1]}?from={winner}"}
        for url in replicas:  # both run the winner's config
            assert listed(url)[name]["target"].endswith(f"?from={winner}")
        assert httpx.delete(f"{replicas[0]}/mcp/servers/{name}", headers=admin_auth(), timeout=30).status_code == 204


def test_the_operators_servers_stay_the_operators_on_every_replica(replicas: tuple[str, str]) -> None:
    a, b = replicas
    clash = add_server(b, "files", "http://127.0.0.1:1/mcp")
    assert clash.status_code == 409 and clash.json()["error"]["type"] == "mcp_server_exists"
    refused = httpx.delete(f"{a}/mcp/servers/files", headers=admin_auth(), timeout=scaled(10))
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "mcp_server_in_file"
    for url in replicas:
        assert listed(url)["files"]["source"] == "file"


# Sessions


def new_session(url: str) -> str:
    response = httpx.post(f"{url}/sessions", json={"title": "two replicas"}, headers=auth(), timeout=scaled(10))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def chat(http: httpx.Client, session_id: str, content: str | None) -> httpx.Response:
    """A turn, or (content None) a regeneration of the stored history."""
    body: dict[str, Any] = {"model": MODEL, "session_id": session_id, "max_tokens": 16}
    if content is None:
        body["regenerate"] = True
    else:
        body["messages"] = [{"role": "user", "content": content}]
    return http.post("/v1/chat/completions", json=body)


def messages(url: str, session_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/sessions/{session_id}/messages", headers=auth(), timeout=scaled(10))
    response.raise_for_status()
    return list(response.json())


def run_turns(url: str, session_id: str, prefix: str, turns: int, failures: list[str]) -> None:
    with httpx.Client(base_url=url, headers=auth(), timeout=scaled(60)) as http:
        for number in range(turns):
            response = chat(http, session_id, f"{prefix}-{number:02d}")
            if response.status_code != 200:
                failures.append(f"{prefix}-{number}: {response.status_code} {response.text[:200]}")


def in_threads(*jobs: Callable[[], None]) -> None:
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def turns_of(stored: list[dict[str, Any]]) -> list[str]:
    """The user messages of a history that must be whole turns: each followed at once by its own answer."""
    assert len(stored) % 2 == 0, [m["content"] for m in stored]
    for question, answer in zip(stored[::2], stored[1::2], strict=True):
        assert (question["role"], answer["role"]) == ("user", "assistant")
        assert answer["content"] == f"echo: {question['content']}"
    return [m["content"] for m in stored[::2]]


def test_two_replicas_appending_to_one_session_store_every_message_once_in_order(replicas: tuple[str, str]) -> None:
    session_id = new_session(replicas[0])
    failures: list[str] = []
    jobs = [
        lambda url=url, prefix=f"{replica}{thread}": run_turns(url, session_id, prefix, TURNS, failures)
        for url, replica in zip(replicas, "ab", strict=True)
        for thread in (1, 2)
    ]
    in_threads(*jobs)
    assert failures == []
    stored = messages(replicas[0], session_id)
    assert stored == messages(replicas[1], session_id)
    ids = [m["id"] for m in stored]
    assert ids == sorted(set(ids)), "ids are unique and give the order"
    asked = turns_of(stored)
    assert sorted(asked) == sorted(f"{p}-{n:02d}" for p in ("a1", "a2", "b1", "b2") for n in range(TURNS))
    for prefix in ("a1", "a2", "b1", "b2"):  # each client's turns in the order it sent them
        own = [content for content in asked if content.startswith(prefix)]
        assert own == sorted(own)
    session = httpx.get(f"{replicas[1]}/sessions/{session_id}", headers=auth(), timeout=scaled(10)).json()
    assert session["message_count"] == 4 * TURNS * 2


def test_edits_through_one_replica_while_the_other_appends_lose_nothing(replicas: tuple[str, str]) -> None:
    a, b = replicas
    session_id = new_session(a)
    failures: list[str] = []
    run_turns(a, session_id, "early", 3, failures)
    early = messages(a, session_id)

    def edit() -> None:
        with httpx.Client(base_url=b, headers=auth(), timeout=scaled(30)) as http:
            for index in (0, 2):
                response = http.patch(
                    f"/sessions/{session_id}/messages/{early[index]['id']}", json={"content": f"edited-{index}"}
                )
                if response.status_code != 200:
                    failures.append(f"edit {index}: {response.status_code}")
                time.sleep(0.05)  # spread the edits over the appends
            if http.delete(f"/sessions/{session_id}/messages/{early[4]['id']}").status_code != 204:
                failures.append("delete")

    in_threads(lambda: run_turns(a, session_id, "late", 2 * TURNS, failures), edit)
    assert failures == []
    stored = messages(b, session_id)
    assert [m["content"] for m in stored[:5]] == [
        "edited-0",
        "echo: early-00",
        "edited-2",
        "echo: early-01",
        "echo: early-02",
    ]
    assert turns_of(stored[5:]) == [f"late-{n:02d}" for n in range(2 * TURNS)]


def test_a_truncation_through_one_replica_while_the_other_appends_leaves_whole_turns(
    replicas: tuple[str, str],
) -> None:
    a, b = replicas
    session_id = new_session(a)
    failures: list[str] = []
    run_turns(a, session_id, "kept", 1, failures)
    kept = messages(a, session_id)[1]["id"]

    def truncate() -> None:
        time.sleep(0.2)  # a few turns in
        response = httpx.delete(
            f"{b}/sessions/{session_id}/messages", params={"after": kept}, headers=auth(), timeout=scaled(30)
        )
        if response.status_code != 204:
            failures.append(f"truncate: {response.status_code}")

    in_threads(lambda: run_turns(a, session_id, "late", 2 * TURNS, failures), truncate)
    assert failures == []
    asked = turns_of(messages(b, session_id))
    assert asked[0] == "kept-00"
    late = [f"late-{n:02d}" for n in range(2 * TURNS)]
    # What survived is the turns stored after the truncation: a tail of them, each whole, none twice.
    assert asked[1:] == late[len(late) - len(asked[1:]) :]


def test_two_replicas_regenerating_one_answer_at_once_store_one_answer(
    replicas: tuple[str, str], model: EchoModel
) -> None:
    a, b = replicas
    session_id = new_session(a)
    failures: list[str] = []
    run_turns(a, session_id, "question", 1, failures)
    question = messages(a, session_id)[0]
    truncated = httpx.delete(
        f"{a}/sessions/{session_id}/messages", params={"after": question["id"]}, headers=auth(), timeout=30
    )
    assert truncated.status_code == 204
    # Both requests read the history before either answer is stored: the model takes a moment for each.
    model.script([say("one answer", delay=1.0), say("another answer", delay=1.0)])
    statuses: list[int] = []

    def regenerate(url: str) -> None:
        with httpx.Client(base_url=url, headers=auth(), timeout=scaled(60)) as http:
            statuses.append(chat(http, session_id, None).status_code)

    in_threads(lambda: regenerate(a), lambda: regenerate(b))
    assert 200 in statuses and set(statuses) <= {200, 409}, statuses
    stored = messages(b, session_id)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[0]["id"] == question["id"] and stored[1]["content"] in ("one answer", "another answer")
