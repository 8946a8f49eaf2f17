"""`python -m devstack up|down|status|logs`: the stack on one machine, no Docker."""

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

from pydantic import ValidationError

from devstack import pg
from devstack.agent_tier import WORKER_STAGE, chroma_problem
from devstack.config import StackSettings, get_settings
from devstack.hostkeys import ALIAS as HOST_ALIAS
from devstack.hostkeys import create_keys, ensure_admin_key, load_keys, mark_service
from devstack.people import ensure_people
from devstack.probe import wait_until
from devstack.services import (
    Service,
    cluster,
    load_plan,
    load_ports,
    plan,
    port_conflicts,
    redis_problem,
    save_plan,
    saved_scale,
    secret_env,
    stages,
    supervised_programs,
)
from devstack.supervisor import Supervisor, render_config
from devstack.uikeys import create_ui_keys, load_ui_keys

FAILED_STATES = {"FATAL", "EXITED", "BACKOFF", "STOPPED"}


class StackError(RuntimeError):
    """A one-line reason the stack cannot come up."""


def _last_log_line(settings: StackSettings, name: str) -> str:
    path = settings.logs_dir / f"{name}.log"
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


def _wait_healthy(
    settings: StackSettings, supervisor: Supervisor, service: Service, health: Callable[[], str | None] | None = None
) -> None:
    restarts_before = supervisor.restarts().get(service.name, 0)

    def check() -> str | None:
        # supervisord brings a program that dies at once back at once too: a restart during `up` is the sign.
        died = supervisor.restarts().get(service.name, 0) > restarts_before
        if service.program is not None and (died or supervisor.state(service.name) in FAILED_STATES):
            raise StackError(
                f"{service.name} exited: {_last_log_line(settings, service.name)} "
                f"(log: {settings.logs_dir / service.name}.log)"
            )
        reason = (health or service.health)()
        if reason is None and service.program is not None and supervisor.state(service.name) == "STARTING":
            return "still starting"  # a fast service (the UI) answers before supervisord calls it RUNNING
        return reason

    reason = wait_until(check, settings.start_timeout, interval=0.5)
    if reason is not None:
        raise StackError(
            f"{service.name} not healthy after {settings.start_timeout:.0f}s: {reason} "
            f"(log: {settings.logs_dir / service.name}.log)"
        )


def up(settings: StackSettings) -> None:
    supervisor = Supervisor(settings)
    running = supervisor.is_running()

    def managed(name: str) -> bool:
        # BACKOFF: supervisord is bringing a crashed program back; its port is ours, not a conflict.
        return running and supervisor.state(name) in ("RUNNING", "STARTING", "BACKOFF")

    services = plan(settings, managed)
    # Ports held by programs of ours that this `up` replaces (a replica count changed): freed on reload.
    ours = {port for name, ports in load_ports(settings).items() if managed(name) for port in ports}
    problems = port_conflicts(services, managed, ours)
    problem = problems[0] if problems else redis_problem(settings) or chroma_problem(settings)
    if problem:
        raise StackError(problem)
    for service in services:
        if service.program is not None and service.prepare is not None:
            service.prepare()
    programs = supervised_programs(services)
    postgres = services[0]
    if load_keys(settings) is None or load_ui_keys(settings) is None:
        # The agent host's and the UI's proxy keys are made through the hub CLI, which needs the database;
        # supervisord then restarts so that its environment carries the new keys (first `up` only).
        supervisor.ensure_started(render_config(settings, programs), secret_env(settings))
        _start_postgres(settings, supervisor, postgres)
        if load_keys(settings) is None:
            create_keys(settings)
        if load_ui_keys(settings) is None:
            create_ui_keys(settings)
        supervisor.shutdown()
    ensure_admin_key(settings)
    supervisor.ensure_started(render_config(settings, programs), secret_env(settings))
    save_plan(settings, services)

    # Dependency order: the database; Redis, the runtimes and Chroma together; the proxy instances together;
    # the balancer in front of them; the ingestion workers; the agent hosts; the balancer in front of them (the
    # same HAProxy); then the UI.
    people_ready = False
    deferred: list[Service] = []  # started; their full health is waited for at their ready_stage

    def wait_deferred(until_stage: int) -> None:
        for service in [s for s in deferred if s.ready_stage is not None and s.ready_stage <= until_stage]:
            _wait_healthy(settings, supervisor, service)
            deferred.remove(service)

    for group in stages(services):
        stage = group[0].stage
        wait_deferred(stage - 1)
        if stage >= WORKER_STAGE and not people_ready:
            _prepare_people(settings)  # the schema the workers and hosts use, the first admin
            people_ready = True
        for service in group:
            if service is postgres:
                _start_postgres(settings, supervisor, service)  # starts, bootstraps and waits itself
            elif service.program is not None:
                supervisor.start(service.name)
        for service in group:
            if service is not postgres:
                _wait_healthy(settings, supervisor, service, service.early_health)
            if service.ready_stage is not None:
                deferred.append(service)
        wait_deferred(stage)
    wait_deferred(max(s.ready_stage or 0 for s in services))
    print_table(settings, services, supervisor)


def _prepare_people(settings: StackSettings) -> None:
    """Before the agent host and the UI start: the schema, the first admin, and the host's key as a service key."""
    mark_service(settings, HOST_ALIAS)  # stacks made before service keys existed
    notice = ensure_people(settings)
    if notice:
        print(notice, flush=True)


def _start_postgres(settings: StackSettings, supervisor: Supervisor, postgres: Service) -> None:
    if postgres.program is None:  # an external server: only check that it answers
        _wait_healthy(settings, supervisor, postgres)
        return
    supervisor.start(postgres.name)
    # The role and databases must exist before the configured URL can connect.
    _wait_healthy(settings, supervisor, postgres, cluster(settings).accepting_connections)
    cluster(settings).bootstrap(
        settings.postgres_user, settings.postgres_password, [settings.postgres_db, *settings.app_databases]
    )
    _wait_healthy(settings, supervisor, postgres)


def down(settings: StackSettings) -> None:
    supervisor = Supervisor(settings)
    if not supervisor.is_running():
        print("stack is not running")
        return
    supervisor.shutdown()
    print("stack stopped (data kept in .stack/)")


def status(settings: StackSettings) -> int:
    supervisor = Supervisor(settings)
    if not supervisor.is_running():
        print("stack is not running: start it with `make up`")
        return 3
    saved = load_plan(settings)
    # What the last `up` started, whatever PROXY_REPLICAS, AGENT_HOST_REPLICAS and RAG_WORKERS now say.
    settings = settings.model_copy(update=saved_scale(settings))
    services = plan(settings, lambda name: saved.get(name) == "embedded")
    return print_table(settings, services, supervisor)


def print_table(settings: StackSettings, services: list[Service], supervisor: Supervisor) -> int:
    rows = []
    unhealthy = 0
    restarts = supervisor.restarts()
    for service in services:
        state = supervisor.state(service.name) if service.program is not None else "EXTERNAL"
        count = str(restarts.get(service.name, 0)) if service.program is not None else "-"
        reason = service.health()
        unhealthy += reason is not None
        health = "healthy" if reason is None else f"DOWN: {reason}"
        rows.append((service.name, state, count, health, service.url, service.note))
    header = ("SERVICE", "PROCESS", "RESTARTS", "HEALTH")
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(4)]
    print("  ".join(f"{title:<{width}}" for title, width in zip(header, widths, strict=True)) + "  URL")
    for *cells, url, note in rows:
        suffix = f"  ({note})" if note else ""
        print("  ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)) + f"  {url}{suffix}")
    print(f"logs: {settings.logs_dir}/  (make logs)")
    return 1 if unhealthy else 0


def logs(settings: StackSettings) -> None:
    files = sorted(str(path) for path in settings.logs_dir.glob("*.log"))
    if not files:
        print("no logs yet: start the stack with `make up`")
        return
    os.execvp("tail", ["tail", "-n", "20", "-F", *files])


def _settings(command: str) -> StackSettings:
    try:
        return get_settings()
    except ValidationError:
        if command == "up":
            raise
        return StackSettings(litellm_master_key="")  # stopping or inspecting needs no secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "logs"])
    args = parser.parse_args(argv)
    try:
        settings = _settings(args.command)
        settings.stack_dir.mkdir(parents=True, exist_ok=True)
        if args.command == "up":
            started = time.monotonic()
            up(settings)
            print(f"stack is up in {time.monotonic() - started:.0f}s")
        elif args.command == "down":
            down(settings)
        elif args.command == "status":
            return status(settings)
        else:
            logs(settings)
    except (RuntimeError, pg.PostgresError, subprocess.CalledProcessError) as exc:  # StackError is one too
        print(f"make {args.command}: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        # pydantic's reason (never the value: it may be a secret), e.g. RUNTIME_REPLICAS=3's "less than or equal to 2".
        names = ", ".join(f"{str(error['loc'][0]).upper()} ({error['msg'].lower()})" for error in exc.errors())
        print(
            f"make {args.command}: missing or invalid setting {names}: set it in litellm_hub/.env "
            "(start from litellm_hub/.env.example)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a config error (e.g. missing LITELLM_MASTER_KEY) still gets one line
        print(
            f"make {args.command}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        return 1
    return 0
