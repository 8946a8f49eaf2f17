"""What `up` runs: each service's command, health check and where it answers."""

import hashlib
import json
import os
import sys
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from devstack import agent_tier, pg
from devstack.agent_tier import HOST_STAGE, UI_STAGE, people_environment
from devstack.balancer import Frontend, haproxy_argv, render_config, write_config
from devstack.config import REPO_ROOT, StackSettings
from devstack.hostkeys import load_keys
from devstack.probe import http_ok, ollama_version, port_in_use, postgres_ok
from devstack.redis_server import RedisServer, redacted, redis_ok
from devstack.runtimes import proxy_config, proxy_runtime_environment, runtimes
from devstack.service import Service
from devstack.supervisor import Program
from devstack.uikeys import load_ui_keys

__all__ = ["Service", "plan", "secret_env"]

VENV_BIN = Path(sys.executable).parent
# Seconds the proxies share one round of health checks (litellm_config.yaml checks every 60 s): under one round,
# so a model pulled into the runtime is listed in /v1/models at the next round.
SHARED_HEALTH_CHECK_TTL = "55"


def cluster(settings: StackSettings) -> pg.Cluster:
    return pg.Cluster(data_dir=settings.stack_dir / "pgdata", port=settings.postgres_port)


def _postgres(settings: StackSettings, external: bool) -> Service:
    program = None
    if not external:
        argv = cluster(settings).server_argv()
        user = None
        if argv[0] == "runuser":  # supervisord switches user itself, so signals reach postgres directly
            argv, user = argv[4:], pg.SERVER_USER
        program = Program("postgres", argv, user=user, stop_signal="INT")
    return Service(
        "postgres",
        settings.postgres_port,
        f"postgresql://{settings.postgres_user}:***@localhost:{settings.postgres_port}/"
        f"{{{','.join([settings.postgres_db, *settings.app_databases])}}}",
        lambda: postgres_ok(settings.database_url),
        program,
        "external server from DATABASE_URL" if external else "",
        stage=0,
        prepare=None if external else cluster(settings).ensure_initialised,
    )


def redis_server(settings: StackSettings) -> RedisServer:
    return RedisServer(
        base_dir=settings.stack_dir / "redis", port=settings.redis_port, maxmemory=settings.redis_maxmemory
    )


def shared_redis_url(settings: StackSettings) -> str:
    """The Redis the proxies share: REDIS_URL when set, else the private one (its URL holds its password)."""
    return settings.redis_url or redis_server(settings).url


def _redis(settings: StackSettings) -> Service:
    if settings.redis_url:
        url = settings.redis_url
        port = urlsplit(url).port or 6379
        return Service(
            "redis", port, redacted(url), lambda: redis_ok(url), None, "external server from REDIS_URL", stage=1
        )
    server = redis_server(settings)
    # supervisord's default TERM makes redis-server save its snapshot and exit.
    return Service(
        "redis",
        server.port,
        redacted(server.url),
        lambda: redis_ok(server.url),
        Program("redis", server.server_argv()),
        stage=1,
        prepare=server.ensure_config,
    )


def redis_problem(settings: StackSettings) -> str | None:
    """Why REDIS_URL, when set, cannot be used; None when it answers (or when the private one is used)."""
    if not settings.redis_url:
        return None
    reason = redis_ok(settings.redis_url)
    return f"REDIS_URL is set but unusable: {reason}" if reason else None


def proxy_names(settings: StackSettings) -> list[str]:
    """`proxy` alone, or `proxy1`..`proxyN` behind the balancer."""
    if settings.proxy_replicas == 1:
        return ["proxy"]
    return [f"proxy{index}" for index in range(1, settings.proxy_replicas + 1)]


def _proxy(settings: StackSettings, name: str, port: int) -> Service:
    argv = [
        # LiteLLM's own database layer must stay off: the hub plugin owns Postgres.
        "env",
        "-u",
        "DATABASE_URL",
        str(VENV_BIN / "litellm"),
        "--config",
        str(proxy_config(settings)),
        "--host",
        settings.litellm_host if settings.proxy_replicas == 1 else "127.0.0.1",
        "--port",
        str(port),
    ]
    environment = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **proxy_runtime_environment(settings),
        # HUB_DATABASE_URL and REDIS_URL (both may hold a password) come from supervisord's environment
        # (secret_env). Each instance spools its own request-log rows: two writers would race on one file.
        "HUB_SPOOL_DIR": str(settings.stack_dir if name == "proxy" else settings.stack_dir / name),
        # After a Redis outage LiteLLM's circuit breaker skips Redis this long before it tries again (its
        # default is 60 s): supervisord brings the private Redis back within seconds, so limits are shared
        # again soon after.
        "REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "10",
        # The instances share each round of health checks (use_shared_health_check) for this long; LiteLLM's
        # default (300 s) would keep a model pulled meanwhile out of /v1/models for five rounds of 60 s.
        "DEFAULT_SHARED_HEALTH_CHECK_TTL": SHARED_HEALTH_CHECK_TTL,
    }
    if settings.hub_cache_ttl_seconds is not None:
        environment["HUB_CACHE_TTL_SECONDS"] = str(settings.hub_cache_ttl_seconds)
    program = Program(name, argv, environment=environment)
    url = f"http://localhost:{port}"
    headers = {"Authorization": f"Bearer {settings.litellm_master_key}"}

    def ready() -> str | None:
        return http_ok(f"{url}/health/liveliness") or http_ok(f"{url}/v1/models", headers=headers)

    note = "" if name == "proxy" else "instance behind the balancer"
    return Service(name, port, f"{url}/v1", ready, program, note, stage=2)


PROXY_BALANCER_STAGE = 3


def _balancer(settings: StackSettings, proxies: list[Service], hosts: list[Service]) -> Service:
    """HAProxy in front of the proxy instances (LITELLM_PORT, checked on /health/readiness) and of the agent
    host instances (AGENT_HOST_PORT, checked on /health/ready), whichever run more than one."""
    frontends = []
    checks: list[Callable[[], str | None]] = []
    if len(proxies) > 1:
        frontends.append(
            Frontend(
                "proxy", settings.litellm_port, [f"127.0.0.1:{s.port}" for s in proxies], bind=settings.litellm_host
            )
        )
        checks.append(lambda: http_ok(f"{settings.proxy_url}/health/readiness"))
    if len(hosts) > 1:
        frontends.append(
            Frontend(
                "agent_host",
                settings.agent_host_port,
                [f"127.0.0.1:{s.port}" for s in hosts],
                "/health/ready",
                replay_only_reads=True,  # a chat or upload that reached a host is never replayed on another
            )
        )
        checks.append(lambda: http_ok(f"{settings.agent_host_url}/health/ready"))
    config = balancer_config_path(settings)
    text = render_config(frontends, balancer_stats_socket(settings))
    # A changed config (more instances) changes the program, so supervisord restarts HAProxy with it.
    environment = {"BALANCER_CONFIG_SHA256": hashlib.sha256(text.encode()).hexdigest()[:16]}
    program = Program("balancer", haproxy_argv(config), stop_signal="USR1", environment=environment)  # USR1: drain
    behind = [group for group in (proxies, hosts) if len(group) > 1]
    note = "HAProxy in front of " + ", ".join(f"{group[0].name}..{group[-1].name}" for group in behind)

    def healthy() -> str | None:
        return next((reason for check in checks if (reason := check()) is not None), None)

    ports = [frontend.port for frontend in frontends]
    urls = [f"{settings.proxy_url}/v1"] * (len(proxies) > 1) + [settings.agent_host_url] * (len(hosts) > 1)
    both = len(frontends) == 2
    return Service(
        "balancer",
        ports[0],
        " ".join(urls),
        healthy,
        program,
        note,
        # In front of the proxies it starts before the hosts (they need the proxy), and is healthy for them
        # once the hosts are too; in front of the hosts alone it starts after them.
        stage=PROXY_BALANCER_STAGE if len(proxies) > 1 else HOST_STAGE + 1,
        prepare=lambda: write_config(config, frontends, balancer_stats_socket(settings)),
        ready_stage=HOST_STAGE if both else None,
        early_health=checks[0] if both else None,
        more_ports=tuple(ports[1:]),
    )


def balancer_config_path(settings: StackSettings) -> Path:
    return settings.stack_dir / "haproxy.cfg"


def balancer_stats_socket(settings: StackSettings) -> Path:
    return settings.stack_dir / "haproxy.sock"


def app_database_url(settings: StackSettings) -> str:
    """The UI history and agent sessions database, on the hub's server with the hub's credentials."""
    return urlsplit(settings.database_url)._replace(path="/genailabs").geturl()


def _ui(settings: StackSettings) -> Service:
    argv = [
        str(VENV_BIN / "streamlit"),
        "run",
        # Streamlit's ASGI app: the sign-in routes and the gate around main.py.
        str(REPO_ROOT / "streamlit_service" / "app.py"),
        "--server.port",
        str(settings.ui_port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    program = Program(
        "ui",
        argv,
        # LITELLM_API_KEY (the UI's service key), UI_COOKIE_SECRET, DATABASE_URL and HUB_DATABASE_URL come from
        # supervisord's environment (secret_env), never from this file.
        environment={
            **people_environment(settings),
            "LITELLM_BASE_URL": f"{settings.proxy_url}/v1",
            "RUNTIME_URLS": ",".join(settings.runtime_urls),
            # Phase 2: chat, documents (RAG) and agents go through the agent host; UI_VIA_AGENT_HOST=false
            # makes the UI talk to the proxy directly as in phase 1.
            "AGENT_HOST_URL": settings.agent_host_url if settings.ui_via_agent_host else "",
        },
    )
    url = f"http://localhost:{settings.ui_port}"
    return Service("ui", settings.ui_port, url, lambda: http_ok(f"{url}/_stcore/health"), program, stage=UI_STAGE)


def plan(settings: StackSettings, managed: Callable[[str], bool]) -> list[Service]:
    """Decides, once per `up`, which services to start and which external ones to use; in start order.

    `managed(name)` tells whether our supervisor already runs that program.
    """
    external_pg = not managed("postgres") and postgres_ok(settings.database_url) is None
    external_ollama = not managed("runtime") and ollama_version(settings.ollama_base_url) is not None
    proxies = [
        _proxy(settings, name, port)
        for name, port in zip(proxy_names(settings), settings.proxy_instance_ports, strict=True)
    ]
    hosts = agent_tier.hosts(settings)
    services = [
        _postgres(settings, external_pg),
        _redis(settings),
        *runtimes(settings, external_ollama),
        agent_tier.chroma(settings),
        *proxies,
        *agent_tier.workers(settings),
        *hosts,
        *([_balancer(settings, proxies, hosts)] if len(proxies) > 1 or len(hosts) > 1 else []),
        _ui(settings),
    ]
    return sorted(services, key=lambda service: service.stage)  # stable: the order above within a stage


def supervised_programs(services: list[Service]) -> list[Program]:
    """What supervisord runs, each with its start stage as its priority (the order it stops in, reversed)."""
    return [
        replace(service.program, priority=100 + 10 * service.stage)
        for service in services
        if service.program is not None
    ]


def stages(services: list[Service]) -> list[list[Service]]:
    """The services grouped by start stage, in order."""
    return [[s for s in services if s.stage == stage] for stage in sorted({s.stage for s in services})]


def port_conflicts(services: list[Service], managed: Callable[[str], bool], ours: Collection[int] = ()) -> list[str]:
    """Ports another process holds. `ours`: ports our running programs hold (a replica count that changed)."""
    return [
        f"port {port} is already in use by another process: stop it, or change the port in .env "
        f"(needed by {service.name})"
        for service in services
        for port in service.ports
        if service.program is not None and not managed(service.name) and port not in ours and port_in_use(port)
    ]


def save_plan(settings: StackSettings, services: list[Service]) -> None:
    state = {
        "modes": {service.name: "embedded" if service.program else "external" for service in services},
        "ports": {service.name: list(service.ports) for service in services if service.program},
        **{name: getattr(settings, name) for name in SCALE_SETTINGS},
    }
    (settings.stack_dir / "plan.json").write_text(json.dumps(state))


def _saved(settings: StackSettings) -> dict[str, object]:
    try:
        saved = json.loads((settings.stack_dir / "plan.json").read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(saved, dict) and "modes" not in saved:  # written before the proxy tier scaled out
        saved = {"modes": saved}
    return saved if isinstance(saved, dict) else {}


def load_plan(settings: StackSettings) -> dict[str, str]:
    """Per service of the last `up`: `embedded` (our program) or `external`."""
    modes = _saved(settings).get("modes")
    return {str(k): str(v) for k, v in modes.items()} if isinstance(modes, dict) else {}


def load_ports(settings: StackSettings) -> dict[str, list[int]]:
    """The ports of each program the last `up` started."""
    ports = _saved(settings).get("ports")
    if not isinstance(ports, dict):
        return {}
    return {str(k): [int(p) for p in v] if isinstance(v, list) else [int(v)] for k, v in ports.items()}


SCALE_SETTINGS = ("runtime_replicas", "proxy_replicas", "agent_host_replicas", "rag_workers")


def saved_scale(settings: StackSettings) -> dict[str, int]:
    """RUNTIME_REPLICAS, PROXY_REPLICAS, AGENT_HOST_REPLICAS, RAG_WORKERS of the last `up`: `status` shows what
    runs, whatever the shell now says."""
    saved = _saved(settings)
    return {name: value for name in SCALE_SETTINGS if isinstance(value := saved.get(name), int)}


def secret_env(settings: StackSettings) -> dict[str, str]:
    """Secrets are handed to supervisord through its environment, never written into its config."""
    # The UI's LITELLM_API_KEY is its own service key (.stack/ui.keys), never the master key.
    env = {
        "LITELLM_MASTER_KEY": settings.litellm_master_key,
        # Database URLs carry the password. Every program that reads DATABASE_URL (agent host, UI) wants
        # the app database; the proxy is started without it (`env -u`), the hub reads HUB_DATABASE_URL.
        "HUB_DATABASE_URL": settings.database_url,
        "DATABASE_URL": app_database_url(settings),
        # Only the proxies use it (the agent host and the UI get it blanked): their shared state.
        "REDIS_URL": shared_redis_url(settings),
    }
    if settings.chroma_url:  # the operator's server: its URL may carry credentials
        env["CHROMA_URL"] = settings.chroma_url
    env.update(load_keys(settings) or {})
    env.update(load_ui_keys(settings) or {})
    if "PATH" not in os.environ:
        env["PATH"] = "/usr/bin:/bin"
    return env
