"""`make up` / `make status` for real, one of each service, on the session's stack (free ports, its own dir)."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from stack_support import MASTER_KEY, PASSWORD, SINGLE, Stack, chat_status, make, stack_environment

from devstack.config import REPO_ROOT, StackSettings
from devstack.probe import http_ok
from devstack.services import plan
from devstack.supervisor import Supervisor
from procs import scaled

SERVICES = ("postgres", "redis", "runtime", "chroma", "proxy", "rag_worker1", "agent_host", "ui")


SEEDED = "kept_from_the_embedded_client"


def _seed_embedded_chroma(path: Path) -> None:
    """Vectors as a stack from before the Chroma server kept them: the embedded client's files."""
    import chromadb

    client = chromadb.PersistentClient(path=str(path))
    collection = client.get_or_create_collection(SEEDED)
    collection.add(ids=["a", "b"], embeddings=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], documents=["first", "second"])


@pytest.fixture(scope="module")
def stack_env(stack: Stack) -> dict[str, str]:
    if stack.running is None and not (stack.dir / "chroma").exists():
        _seed_embedded_chroma(stack.dir / "chroma")
    stack.up(SINGLE)  # the first test says what went wrong, if anything did
    return stack.env


def test_make_up_starts_every_service_healthy_and_the_proxy_answers(stack: Stack, stack_env: dict[str, str]) -> None:
    result = stack.up(SINGLE)
    assert result.returncode == 0, result.stdout + result.stderr
    for service in SERVICES:
        row = next(line for line in result.stdout.splitlines() if line.startswith(service + " "))
        assert "RUNNING" in row and "healthy" in row, row
    assert MASTER_KEY not in result.stdout + result.stderr

    proxy = f"http://localhost:{stack_env['LITELLM_PORT']}"
    reply = httpx.post(
        f"{proxy}/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"]


def test_the_chroma_server_serves_what_the_embedded_client_kept(stack: Stack, stack_env: dict[str, str]) -> None:
    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=int(stack_env["CHROMA_PORT"]))
    if SEEDED not in {collection.name for collection in client.list_collections()}:
        pytest.skip("the session's stack was started before this module could seed it")
    collection = client.get_collection(SEEDED)
    assert collection.count() == 2
    found = collection.query(query_embeddings=[[0.0, 1.0, 0.0]], n_results=1, include=["documents"])
    assert found["documents"] == [["second"]]


def test_make_up_again_is_idempotent(stack_env: dict[str, str]) -> None:
    result = make("up", stack_env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_status_reports_each_service_healthy(stack_env: dict[str, str]) -> None:
    result = make("status", stack_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("healthy") == len(SERVICES), result.stdout


def _chat(client: httpx.Client, proxy: str) -> int:
    return chat_status(client, proxy, MASTER_KEY)


def test_a_runtime_killed_by_sigsegv_again_and_again_is_back_within_seconds_each_time(
    stack_env: dict[str, str],
) -> None:
    settings = StackSettings(stack_dir=Path(stack_env["STACK_DIR"]), litellm_master_key=MASTER_KEY)
    supervisor = Supervisor(settings)
    proxy = f"http://localhost:{stack_env['LITELLM_PORT']}"
    runtime_url = stack_env["OLLAMA_BASE_URL"]
    stop = threading.Event()
    statuses: list[int] = []
    states: set[tuple[str, str]] = set()

    def traffic() -> None:  # a client chatting through the proxy all along
        with httpx.Client(timeout=scaled(60)) as client:
            while not stop.is_set():
                statuses.append(_chat(client, proxy))

    def watch() -> None:  # every state supervisord shows meanwhile
        while not stop.is_set():
            states.update((name, supervisor.state(name)) for name in ("runtime", "proxy"))
            time.sleep(0.05)

    threads = [threading.Thread(target=traffic), threading.Thread(target=watch)]
    for thread in threads:
        thread.start()
    recoveries = []
    try:
        # Each kill comes as soon as the runtime answers again, often before supervisord counts it as
        # started (startsecs): that crash takes supervisord's retry path (BACKOFF), which must not give up.
        for _ in range(3):
            info = supervisor.info("runtime")
            assert info is not None and info["statename"] in ("RUNNING", "STARTING") and info["pid"], info
            pid = int(str(info["pid"]))
            os.kill(pid, signal.SIGSEGV)
            killed = time.monotonic()
            while True:
                info = supervisor.info("runtime") or {}
                if info.get("pid") not in (0, pid) and http_ok(f"{runtime_url}/api/version", timeout=1) is None:
                    break
                # A deadline, not a speed claim: on a busy 2-core machine a runtime takes a while to load its model.
                assert time.monotonic() - killed < scaled(30), f"runtime not back after {scaled(30):.0f}s: {info}"
                time.sleep(0.05)
            recoveries.append(time.monotonic() - killed)
        settled = time.monotonic() + scaled(10)
        while supervisor.state("runtime") != "RUNNING":
            assert time.monotonic() < settled, supervisor.info("runtime")
            time.sleep(0.1)
        # The client's chat under way may have been sent while the runtime was down (on a busy machine each one
        # takes seconds): wait for one it sends after the runtime is back.
        back = len(statuses)
        answered = time.monotonic() + scaled(90)
        while len(statuses) <= back + 1 and time.monotonic() < answered:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=scaled(90))
    failed = len(statuses) - statuses.count(200)
    times = ", ".join(f"{seconds:.1f}s" for seconds in recoveries)
    print(f"runtime back after SIGSEGV in {times}; {len(statuses)} chats meanwhile, {failed} failed")
    assert not {state for _, state in states} & {"FATAL", "STOPPED"}, sorted(states)
    # One runtime: a chat sent while it is down fails (nothing to fail over to; RUNTIME_REPLICAS=2 has), but the
    # proxy never rests its group's only deployment, so chats are answered again as soon as the runtime is back.
    assert statuses and statuses[-1] == 200, statuses
    with httpx.Client(timeout=scaled(60)) as client:
        assert _chat(client, proxy) == 200

    status = make("status", stack_env)
    assert status.returncode == 0, status.stdout + status.stderr
    header, *rows = status.stdout.splitlines()
    assert header.split()[:4] == ["SERVICE", "PROCESS", "RESTARTS", "HEALTH"], header
    runtime_row = next(row.split() for row in rows if row.startswith("runtime "))
    assert int(runtime_row[2]) >= 3, status.stdout
    assert next(row.split() for row in rows if row.startswith("proxy "))[2] == "0", status.stdout


def test_every_other_service_killed_outright_is_back_and_healthy(stack: Stack, stack_env: dict[str, str]) -> None:
    settings = stack.settings()
    supervisor = Supervisor(settings)
    services = {service.name: service for service in plan(settings, lambda name: True)}
    recoveries = {}
    # The proxy too, but with traffic and two instances: test_proxy_replicas.py kills proxy1 mid-chat.
    for name in ("postgres", "chroma", "rag_worker1", "agent_host", "ui"):
        info = supervisor.info(name)
        assert info is not None and info["statename"] == "RUNNING", info
        os.kill(int(str(info["pid"])), signal.SIGKILL)
        killed = time.monotonic()
        time.sleep(0.5)  # until supervisord has seen it die: the old process may still answer a probe
        while (services[name].health() is not None or supervisor.state(name) != "RUNNING") and (
            time.monotonic() - killed < scaled(90)
        ):
            time.sleep(0.2)
        assert services[name].health() is None, f"{name} not back after {scaled(90):.0f}s"
        recoveries[name] = time.monotonic() - killed
    print("back after SIGKILL: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in recoveries.items()))
    assert not any(state == "FATAL" for state in map(supervisor.state, services))


def test_chat_ui_answers_and_its_key_stays_out_of_the_supervisor_config(stack_env: dict[str, str]) -> None:
    page = httpx.get(f"http://localhost:{stack_env['UI_PORT']}/_stcore/health", timeout=10)
    assert page.status_code == 200 and page.text == "ok"
    config = (Path(stack_env["STACK_DIR"]) / "supervisord.conf").read_text()
    assert "[program:ui]" in config and MASTER_KEY not in config


def test_the_agent_host_chats_with_its_own_proxy_key_kept_out_of_the_config(stack_env: dict[str, str]) -> None:
    import json

    stack_dir = Path(stack_env["STACK_DIR"])
    keys_file = stack_dir / "agent_host.keys"
    assert keys_file.stat().st_mode & 0o777 == 0o600
    keys = json.loads(keys_file.read_text())
    config = (stack_dir / "supervisord.conf").read_text()
    assert "[program:agent_host]" in config
    assert keys["AGENT_HOST_PROXY_KEY"] not in config and keys["AGENT_HOST_API_KEY"] not in config
    assert "pw@stack" not in config and "pw%40stack" not in config  # nor the database password
    reply = httpx.post(
        f"http://localhost:{stack_env['AGENT_HOST_PORT']}/v1/chat/completions",
        headers={"Authorization": f"Bearer {keys['AGENT_HOST_API_KEY']}"},
        json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 8},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text


def test_databases_for_the_hub_and_the_app_exist(stack_env: dict[str, str]) -> None:
    import psycopg

    for database in ("litellm", "genailabs"):
        with psycopg.connect(
            host="localhost", port=stack_env["POSTGRES_PORT"], user="litellm", password=PASSWORD, dbname=database
        ) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (database,)


def test_make_up_refuses_a_busy_port_with_one_line(tmp_path: Path) -> None:
    import socket

    env = stack_environment(tmp_path)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["LITELLM_PORT"])))
        blocker.listen()
        result = subprocess.run(
            [str(REPO_ROOT / ".venv/bin/python"), "-m", "devstack", "up"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {env['LITELLM_PORT']} is already in use" in lines[0]


def test_up_uses_an_ollama_that_already_answers_instead_of_the_embedded_runtime(
    runtimes: tuple[str, str], tmp_path: Path
) -> None:
    settings = StackSettings(stack_dir=tmp_path, ollama_base_url=runtimes[0], litellm_master_key=MASTER_KEY)
    services = {service.name: service for service in plan(settings, lambda name: False)}
    assert services["runtime"].program is None
    assert "Ollama found" in services["runtime"].note
    assert "runtime2" not in services  # RUNTIME_REPLICAS=2 would add an embedded one (test_runtime_replicas.py)
