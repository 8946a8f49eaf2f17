"""The generated supervisord config (no secrets, restarts that never give up) and the restart counter."""

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from devstack.config import REPO_ROOT, StackSettings
from devstack.restarts import count_event, load_restarts
from devstack.services import plan, secret_env
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
    programs = [service.program for service in plan(settings, lambda name: True) if service.program is not None]
    return render_config(settings, programs)


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
    assert len(programs) == 7  # postgres, redis, runtime, runtime2, proxy, agent_host, ui
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
