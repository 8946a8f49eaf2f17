"""The scaled stack (SCALED in stack_support.py: everything doubled), the proxy side: Redis, two proxy instances
behind HAProxy on LITELLM_PORT, two runtimes behind them, for real. The session's stack is switched to it in place."""

import os
import signal
import socket
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest
from stack_support import MASTER_KEY, SCALED, Stack, chat_status, devstack_up, make, stack_environment

from devstack.balancer import server_stats
from devstack.config import StackSettings
from devstack.probe import free_port, http_ok
from devstack.redis_server import redis_ok
from devstack.supervisor import Supervisor
from procs import scaled

INSTANCES = ("proxy1", "proxy2")
SCALED_SERVICES = (
    *("postgres", "redis", "runtime", "runtime2", "chroma", *INSTANCES, "balancer"),
    *("rag_worker1", "rag_worker2", "agent_host1", "agent_host2", "ui"),
)


def _settings(env: dict[str, str]) -> StackSettings:
    return StackSettings(
        stack_dir=Path(env["STACK_DIR"]),
        litellm_master_key=MASTER_KEY,
        litellm_port=int(env["LITELLM_PORT"]),
        redis_port=int(env["REDIS_PORT"]),
        proxy_replicas=2,
        proxy_internal_port_base=int(env["PROXY_INTERNAL_PORT_BASE"]),
    )


@pytest.fixture(scope="module")
def stack_env(stack: Stack) -> dict[str, str]:
    result = stack.up(SCALED)
    return {**stack.env, "UP_OUTPUT": result.stdout + result.stderr, "UP_RC": str(result.returncode)}


def _row(output: str, name: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(name + " "))


def _chat(client: httpx.Client, url: str) -> int:
    return chat_status(client, url, MASTER_KEY)


def test_make_up_runs_redis_two_proxy_instances_and_the_balancer_healthy(stack_env: dict[str, str]) -> None:
    output = stack_env["UP_OUTPUT"]
    assert stack_env["UP_RC"] == "0", output
    for name in SCALED_SERVICES:
        row = _row(output, name)
        assert row[1] == "RUNNING" and row[3] == "healthy", row
    assert not any(line.startswith(("proxy ", "agent_host ")) for line in output.splitlines()), output
    assert _row(output, "balancer")[4] == f"http://localhost:{stack_env['LITELLM_PORT']}/v1"
    base = int(stack_env["PROXY_INTERNAL_PORT_BASE"])
    assert [int(_row(output, name)[4].split(":")[2].split("/")[0]) for name in INSTANCES] == [base + 1, base + 2]

    status = make("status", stack_env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("healthy") == len(SCALED_SERVICES), status.stdout


def test_redis_password_stays_in_its_own_files_and_reaches_only_the_proxies(stack_env: dict[str, str]) -> None:
    settings = _settings(stack_env)
    redis_dir = settings.stack_dir / "redis"
    password = (redis_dir / "password").read_text().strip()
    for path in (redis_dir / "password", redis_dir / "redis.conf"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    config = (settings.stack_dir / "supervisord.conf").read_text()
    assert password not in config and MASTER_KEY not in config
    assert password not in stack_env["UP_OUTPUT"]

    supervisor = Supervisor(settings)
    for name in (*INSTANCES, "redis", "agent_host1", "rag_worker1"):
        info = supervisor.info(name)
        assert info is not None and info["pid"], name
        pid = int(str(info["pid"]))
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in item
        )
        assert password not in argv, name
        if name in INSTANCES:
            assert redis_ok(environ["REDIS_URL"]) is None and password in environ["REDIS_URL"], name
        elif name != "redis":  # the hosts and the workers: neither the Redis password nor the master key
            assert environ.get("REDIS_URL") == "" and environ.get("LITELLM_MASTER_KEY") == ""
        if name == "rag_worker1":  # it calls no model and serves no person: no key of the host's or the UI's
            keys = ("AGENT_HOST_API_KEY", "AGENT_HOST_ADMIN_KEY", "AGENT_HOST_PROXY_KEY", "LITELLM_API_KEY")
            assert all(environ.get(key) == "" for key in keys), name
            assert environ.get("HUB_DATABASE_URL") == "" and environ.get("DATABASE_URL", "").endswith("/genailabs")


def test_chats_through_the_public_port_reach_both_instances(stack_env: dict[str, str]) -> None:
    url = f"http://localhost:{stack_env['LITELLM_PORT']}"
    with httpx.Client(timeout=scaled(60)) as client:
        statuses = [_chat(client, url) for _ in range(4)]
    assert statuses == [200] * 4
    settings = _settings(stack_env)
    servers = server_stats(settings.stack_dir / "haproxy.sock")["proxy"]
    assert sorted(servers) == ["proxy1", "proxy2"], servers
    assert all(row["status"] == "UP" and int(row["stot"]) > 0 for row in servers.values()), servers


def test_the_smollm2_group_is_answered_by_both_runtimes(stack_env: dict[str, str]) -> None:
    """RUNTIME_REPLICAS=2: the proxies run the config with a deployment on each runtime."""
    url = f"http://localhost:{stack_env['LITELLM_PORT']}/v1/chat/completions"
    body = {"model": "smollm2:135m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    answered_by = set()
    with httpx.Client(timeout=scaled(60), headers={"Authorization": f"Bearer {MASTER_KEY}"}) as client:
        for _ in range(12):
            reply = client.post(url, json=body)
            assert reply.status_code == 200, reply.text
            answered_by.add(reply.headers["x-litellm-model-id"])
    # simple-shuffle: a 1 in 2048 chance that twelve chats all go to one runtime.
    assert answered_by == {"smollm2-135m-runtime1", "smollm2-135m-runtime2"}


def test_a_proxy_instance_killed_mid_traffic_loses_no_request_and_comes_back(stack_env: dict[str, str]) -> None:
    settings = _settings(stack_env)
    supervisor = Supervisor(settings)
    url = f"http://localhost:{stack_env['LITELLM_PORT']}"
    stop = threading.Event()
    statuses: list[int] = []

    def traffic() -> None:
        with httpx.Client(timeout=scaled(60)) as client:
            while not stop.is_set():
                statuses.append(_chat(client, url))

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(scaled(2))  # requests in flight on both instances
        info = supervisor.info("proxy1")
        assert info is not None and info["statename"] == "RUNNING", info
        pid = int(str(info["pid"]))
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        before = len(statuses)
        instance = f"http://localhost:{int(stack_env['PROXY_INTERNAL_PORT_BASE']) + 1}"
        while (supervisor.info("proxy1") or {}).get("pid") in (0, pid) or http_ok(f"{instance}/health/readiness"):
            assert time.monotonic() - killed < scaled(120), f"proxy1 not back: {supervisor.info('proxy1')}"
            time.sleep(0.5)
        back = time.monotonic() - killed
        time.sleep(scaled(3))  # HAProxy's checks take it back in; traffic goes on
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=scaled(90))
    log = (settings.logs_dir / "balancer.log").read_text()
    resent = sum(" proxy/proxy2 " in line and "/+1 " in line for line in log.splitlines())
    print(
        f"proxy1 back after SIGKILL in {back:.1f}s; {len(statuses)} chats, {len(statuses) - before} after the kill, "
        f"{resent} lost by proxy1 and sent again to proxy2"
    )
    assert len(statuses) > before, "no chat ran while proxy1 was down"
    assert statuses.count(200) == len(statuses), statuses

    status = make("status", stack_env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert int(_row(status.stdout, "proxy1")[2]) >= 1 and _row(status.stdout, "proxy1")[3] == "healthy", status.stdout
    assert _row(status.stdout, "proxy2")[2] == "0", status.stdout


def test_redis_killed_is_restarted_by_supervisord(stack_env: dict[str, str]) -> None:
    settings = _settings(stack_env)
    supervisor = Supervisor(settings)
    password = (settings.stack_dir / "redis" / "password").read_text().strip()
    redis_url = f"redis://:{password}@127.0.0.1:{stack_env['REDIS_PORT']}/0"
    assert redis_ok(redis_url) is None
    info = supervisor.info("redis")
    assert info is not None and info["statename"] == "RUNNING", info
    os.kill(int(str(info["pid"])), signal.SIGKILL)
    killed = time.monotonic()
    time.sleep(0.5)
    while redis_ok(redis_url) is not None or supervisor.state("redis") != "RUNNING":
        assert time.monotonic() - killed < scaled(30), supervisor.info("redis")
        time.sleep(0.2)
    print(f"redis back after SIGKILL in {time.monotonic() - killed:.1f}s")
    with httpx.Client(timeout=scaled(60)) as client:
        assert _chat(client, f"http://localhost:{stack_env['LITELLM_PORT']}") == 200
    status = make("status", stack_env)
    assert int(_row(status.stdout, "redis")[2]) >= 1 and _row(status.stdout, "redis")[3] == "healthy", status.stdout


def test_make_up_refuses_a_taken_redis_port_with_one_line(tmp_path: Path) -> None:
    env = stack_environment(tmp_path, **SCALED)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["REDIS_PORT"])))
        blocker.listen()
        result = devstack_up(env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert f"port {env['REDIS_PORT']} is already in use" in lines[0] and "redis" in lines[0]


def test_make_up_refuses_an_unreachable_redis_url_with_one_line(tmp_path: Path) -> None:
    env = {**stack_environment(tmp_path, **SCALED), "REDIS_URL": f"redis://:secret-pw@127.0.0.1:{free_port()}/0"}
    result = devstack_up(env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert "REDIS_URL" in lines[0] and "secret-pw" not in result.stdout + result.stderr
