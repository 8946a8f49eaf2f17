"""The generated supervisord config (no secrets, restarts that never give up) and the restart counter."""

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from devstack.config import REPO_ROOT, StackSettings
from devstack.restarts import count_event, load_restarts
from devstack.services import plan, secret_env, supervised_programs
from devstack.supervisor import START_RETRIES, render_config

MASTER_KEY = "sk-master-Secret-4f1c9"
# Characters that break a URL unless encoded, and that must not leak through it either.
PASSWORD = "pw@Secret/9:x%#?"
AGENT_KEYS = {"AGENT_HOST_PROXY_KEY": "sk-proxy-Secret-77aa", "AGENT_HOST_API_KEY": "sk-agent-Secret-88bb"}


def _settings(stack_dir: Path) -> StackSettings:
    (stack_dir / "agent_host.keys").write_text(json.dumps(AGENT_KEYS))
    return StackSettings(
        stack_dir=stack_dir, litellm_master_key=MASTER_KEY, postgres_password=PASSWORD, database_url=""
    )


def _config(settings: StackSettings) -> str:
    return render_config(settings, supervised_programs(plan(settings, lambda name: True)))


def test_supervisor_config_holds_no_secret_and_the_programs_still_get_them(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    config = _config(settings)
    env = secret_env(settings)
    for secret in (MASTER_KEY, PASSWORD, "Secret", *AGENT_KEYS.values()):
        assert secret not in config, secret
    assert settings.database_url not in config
    assert env["HUB_DATABASE_URL"] == settings.database_url
    assert env["DATABASE_URL"].endswith("/genailabs")
    assert env["LITELLM_MASTER_KEY"] == MASTER_KEY and env["AGENT_HOST_API_KEY"] == AGENT_KEYS["AGENT_HOST_API_KEY"]


def test_database_url_built_from_the_postgres_settings_is_url_encoded(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    parts = psycopg.conninfo.conninfo_to_dict(settings.database_url)
    assert parts["password"] == PASSWORD and parts["user"] == "litellm" and parts["dbname"] == "litellm"
    assert parts["port"] == str(settings.postgres_port)
    mine = StackSettings(stack_dir=tmp_path, litellm_master_key=MASTER_KEY, database_url="postgresql://a:b@h:1/d")
    assert mine.database_url == "postgresql://a:b@h:1/d"  # a URL given is used as it is


def test_every_program_restarts_on_any_exit_and_retries_failed_starts(tmp_path: Path) -> None:
    sections = _config(_settings(tmp_path)).split("[")
    programs = [section for section in sections if section.startswith("program:")]
    assert len(programs) == 8  # postgres, redis, runtime, chroma, proxy, rag_worker1, agent_host, ui
    for section in programs:
        assert "\nautorestart=true\n" in section, section
        assert f"\nstartretries={START_RETRIES}\n" in section and START_RETRIES >= 50, section
    listener = next(section for section in sections if section.startswith("eventlistener:restarts"))
    assert "events=PROCESS_STATE_EXITED,PROCESS_STATE_BACKOFF" in listener


def test_restart_counter_counts_exits_and_failed_starts_per_program() -> None:
    counts: dict[str, int] = {}
    assert count_event(counts, "PROCESS_STATE_EXITED", "processname:runtime groupname:runtime expected:0 pid:7")
    assert count_event(counts, "PROCESS_STATE_BACKOFF", "processname:runtime groupname:runtime from_state:STARTING")
    assert count_event(counts, "PROCESS_STATE_EXITED", "processname:proxy groupname:proxy expected:0 pid:9")
    assert not count_event(counts, "PROCESS_STATE_STOPPED", "processname:proxy groupname:proxy pid:9")
    assert counts == {"runtime": 2, "proxy": 1}


def test_restart_listener_speaks_supervisors_event_protocol(tmp_path: Path) -> None:
    path = tmp_path / "restarts.json"
    path.write_text(json.dumps({"runtime": 2}))  # a restarted listener carries on from the file
    listener = subprocess.Popen(
        [sys.executable, "-m", "devstack.restarts", str(path)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert listener.stdin is not None and listener.stdout is not None
    try:
        for event in ("PROCESS_STATE_EXITED", "PROCESS_STATE_RUNNING"):
            assert listener.stdout.readline() == "READY\n"
            payload = "processname:runtime groupname:runtime from_state:RUNNING expected:0 pid:42"
            listener.stdin.write(
                f"ver:3.0 server:supervisor serial:1 pool:restarts poolserial:1 eventname:{event} len:{len(payload)}\n"
                + payload
            )
            listener.stdin.flush()
            assert listener.stdout.readline() == "RESULT 2\n" and listener.stdout.read(2) == "OK"
        assert listener.stdout.readline() == "READY\n"
    finally:
        listener.kill()
        listener.wait()
    assert load_restarts(path) == {"runtime": 3}


def test_redis_password_reaches_the_programs_through_the_environment_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    config = _config(settings)
    env = secret_env(settings)
    password = (tmp_path / "redis" / "password").read_text().strip()
    assert password and password in env["REDIS_URL"] and password not in config
    assert env["REDIS_URL"].endswith(f"@127.0.0.1:{settings.redis_port}/0")
    given = StackSettings(stack_dir=tmp_path, litellm_master_key=MASTER_KEY, redis_url="redis://:Secret@r:7/1")
    services = {service.name: service for service in plan(given, lambda name: True)}
    assert services["redis"].program is None and "Secret" not in services["redis"].url
    assert secret_env(given)["REDIS_URL"] == "redis://:Secret@r:7/1"


def test_several_proxy_replicas_are_instances_on_internal_ports_behind_the_balancer(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(update={"proxy_replicas": 3, "proxy_internal_port_base": 5000})
    services = {service.name: service for service in plan(settings, lambda name: True)}
    assert "proxy" not in services
    assert [services[f"proxy{i}"].port for i in (1, 2, 3)] == [5001, 5002, 5003]
    assert services["balancer"].port == settings.litellm_port
    config = _config(settings)
    assert "[program:balancer]" in config and "[program:proxy3]" in config
    assert "--host 127.0.0.1 --port 5002" in config
    for name in ("proxy1", "proxy2", "proxy3"):  # each instance spools its own request-log rows
        assert f'HUB_SPOOL_DIR="{tmp_path / name}"' in config
    services["balancer"].prepare()  # type: ignore[misc]
    haproxy = (tmp_path / "haproxy.cfg").read_text()
    assert f"bind 127.0.0.1:{settings.litellm_port}" in haproxy
    assert all(f"127.0.0.1:{port} check" in haproxy for port in (5001, 5002, 5003))
    assert "option httpchk GET /health/readiness" in haproxy


def test_a_missing_redis_server_or_haproxy_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devstack import balancer, redis_server

    # shutil and os are the real modules: monkeypatch puts them back after the test.
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"^redis-server not found: run `make setup`"):
        plan(_settings(tmp_path), lambda name: True)
    monkeypatch.setattr(balancer.os, "access", lambda path, mode: False)
    with pytest.raises(RuntimeError, match=r"^haproxy not found: run `make setup`"):
        balancer.find_haproxy()


def _programs(config: str) -> dict[str, str]:
    """Each [program:x] section of a supervisord config, by name."""
    sections = [section for section in config.split("\n[") if section.startswith("program:")]
    return {section.split("]", 1)[0].removeprefix("program:"): section for section in sections}


def test_one_host_and_one_worker_run_beside_a_chroma_server_with_ingestion_out_of_the_host(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    services = plan(settings, lambda name: True)
    names = [service.name for service in services]
    assert names.index("chroma") < names.index("rag_worker1") < names.index("agent_host") < names.index("ui")
    assert "balancer" not in names
    programs = _programs(_config(settings))
    chroma_url = f"http://127.0.0.1:{settings.chroma_port}"
    assert programs["chroma"].split("\n")[1] == (
        f"command={REPO_ROOT / '.venv/bin/chroma'} run --path {tmp_path / 'chroma'} --host 127.0.0.1 "
        f"--port {settings.chroma_port}"
    )
    assert f"--host 127.0.0.1 --port {settings.agent_host_port}" in programs["agent_host"]
    assert "command=" + str(REPO_ROOT / ".venv/bin/python") + " -m agent_host.worker\n" in programs["rag_worker1"]
    for name in ("agent_host", "rag_worker1"):
        assert 'RAG_INLINE_WORKER="false"' in programs[name] and f'CHROMA_URL="{chroma_url}"' in programs[name]
        assert "\nautorestart=true\n" in programs[name]
    assert f'RAG_WORKER_PORT="{settings.rag_worker_port_base + 1}"' in programs["rag_worker1"]
    assert 'AGENT_HOST_PROXY_KEY=""' in programs["rag_worker1"] and 'HUB_DATABASE_URL=""' in programs["rag_worker1"]
    by_name = {service.name: service for service in services}
    # Chroma starts with Redis and the runtimes, and is waited for only before the workers (the proxy starts
    # while its server comes up).
    assert by_name["chroma"].stage < by_name["proxy"].stage <= by_name["chroma"].ready_stage  # type: ignore[operator]
    assert by_name["chroma"].ready_stage < by_name["rag_worker1"].stage  # type: ignore[operator]
    ports = {service.name: service.port for service in services}
    assert ports["chroma"] == 8001 and ports["rag_worker1"] == 8091 and ports["agent_host"] == 8000


def test_two_hosts_and_two_workers_sit_behind_the_balancer_that_also_fronts_two_proxies(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(
        update={"proxy_replicas": 2, "agent_host_replicas": 2, "rag_workers": 2, "agent_host_internal_port_base": 7000}
    )
    services = {service.name: service for service in plan(settings, lambda name: True)}
    assert "agent_host" not in services and "proxy" not in services
    assert [services[f"agent_host{i}"].port for i in (1, 2)] == [7001, 7002]
    assert [services[f"rag_worker{i}"].port for i in (1, 2)] == [8091, 8092]
    balancer = services["balancer"]
    assert balancer.ports == (settings.litellm_port, settings.agent_host_port)
    # Started before the hosts (they need the proxy), healthy for the hosts once they are.
    assert balancer.stage < services["rag_worker1"].stage < services["agent_host1"].stage == balancer.ready_stage
    assert balancer.early_health is not None
    programs = _programs(_config(settings))
    assert set(programs) == {
        *("postgres", "redis", "runtime", "chroma", "proxy1", "proxy2", "rag_worker1", "rag_worker2"),
        *("agent_host1", "agent_host2", "balancer", "ui"),
    }
    assert "--host 127.0.0.1 --port 7002" in programs["agent_host2"]
    assert 'RAG_WORKER_PORT="8092"' in programs["rag_worker2"]
    for secret in (MASTER_KEY, PASSWORD, *AGENT_KEYS.values()):
        assert all(secret not in section for section in programs.values()), secret
    balancer.prepare()  # type: ignore[misc]
    haproxy = (tmp_path / "haproxy.cfg").read_text()
    host_backend = haproxy[haproxy.index("backend agent_host") :]
    assert f"bind 127.0.0.1:{settings.agent_host_port}" in haproxy
    assert "option httpchk GET /health/ready" in host_backend
    assert "server agent_host1 127.0.0.1:7001 check" in host_backend and "127.0.0.1:7002 check" in host_backend
    assert "timeout tunnel 1h" in haproxy  # a WebSocket (/ws/chat) lives on after its upgrade
    state = plan(settings.model_copy(update={"agent_host_replicas": 1}), lambda name: True)
    assert "balancer" in {service.name for service in state}  # still in front of the two proxies


def test_a_changed_balancer_config_changes_its_program_so_supervisord_restarts_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(update={"proxy_replicas": 2})
    before = _programs(_config(settings))["balancer"]
    after = _programs(_config(settings.model_copy(update={"agent_host_replicas": 2})))["balancer"]
    assert before.split("\n")[1] == after.split("\n")[1]  # same command: only the config file differs
    assert before != after


def test_a_chroma_url_of_ones_own_is_used_and_kept_out_of_the_config(tmp_path: Path) -> None:
    url = "http://chroma-user:Secret-token@chroma.example:8000"
    settings = _settings(tmp_path).model_copy(update={"chroma_url": url})
    services = {service.name: service for service in plan(settings, lambda name: True)}
    assert services["chroma"].program is None and "Secret" not in services["chroma"].url
    config = _config(settings)
    assert "[program:chroma]" not in config and "Secret" not in config
    assert secret_env(settings)["CHROMA_URL"] == url


def test_a_missing_chroma_cli_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from devstack import agent_tier

    monkeypatch.setattr(agent_tier, "VENV_BIN", tmp_path)
    monkeypatch.setattr(agent_tier.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"^chroma not found: run `make setup`"):
        agent_tier.chroma(_settings(tmp_path))


def test_programs_stop_in_reverse_start_order_so_the_database_outlives_the_workers(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(update={"proxy_replicas": 2, "agent_host_replicas": 2})
    priorities = {
        name: int(section.split("\npriority=", 1)[1].split("\n", 1)[0])
        for name, section in _programs(_config(settings)).items()
    }
    order = ["postgres", "chroma", "proxy1", "balancer", "rag_worker1", "agent_host1", "ui"]
    assert [priorities[name] for name in order] == sorted(priorities[name] for name in order)
    assert len({priorities[name] for name in order}) == len(order), priorities
    assert priorities["redis"] == priorities["chroma"] and priorities["agent_host1"] == priorities["agent_host2"]
