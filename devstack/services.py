"""What `up` runs: each service's command, health check and where it answers."""

import json
import os
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devstack import pg
from devstack.balancer import Frontend, haproxy_argv, write_config
from devstack.config import REPO_ROOT, StackSettings
from devstack.hostkeys import load_keys
from devstack.probe import http_ok, ollama_version, port_in_use, postgres_ok
from devstack.redis_server import RedisServer, redacted, redis_ok
from devstack.supervisor import Program
from devstack.uikeys import load_ui_keys

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    url: str
    health: Callable[[], str | None]
    program: Program | None  # None: an external server already answers, `up` leaves it alone
    note: str = ""
    # Services of one stage start together, once every service of the stages before is healthy.
    stage: int = 0
    # Run by `up` before supervisord (re)reads its config: files the program needs (its own config...).
    prepare: Callable[[], None] | None = None


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


def _runtime(name: str, port: int, base_url: str, external: bool) -> Service:
    program = None
    if not external:
        program = Program(
            name,
            [str(VENV_BIN / "python"), "-m", "local_runtime", "--host", "127.0.0.1", "--port", str(port)],
            environment={"RUNTIME_MODELS_DIR": str(REPO_ROOT / "models")},
        )
    return Service(
        name,
        port,
        base_url,
        lambda: http_ok(f"{base_url}/api/version"),
        program,
        "Ollama found at OLLAMA_BASE_URL, embedded runtime skipped" if external else "",
        stage=1,
    )


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
        str(REPO_ROOT / "litellm_hub" / "litellm_config.yaml"),
        "--host",
        settings.litellm_host if settings.proxy_replicas == 1 else "127.0.0.1",
        "--port",
        str(port),
    ]
    environment = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OLLAMA_BASE_URL": settings.ollama_base_url,
        "RUNTIME2_BASE_URL": settings.runtime2_base_url,
        # HUB_DATABASE_URL and REDIS_URL (both may hold a password) come from supervisord's environment
        # (secret_env). Each instance spools its own request-log rows: two writers would race on one file.
        "HUB_SPOOL_DIR": str(settings.stack_dir if name == "proxy" else settings.stack_dir / name),
        # After a Redis outage LiteLLM's circuit breaker skips Redis this long before it tries again (its
        # default is 60 s): supervisord brings the private Redis back within seconds, so limits are shared
        # again soon after.
        "REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "10",
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


def _balancer(settings: StackSettings, instances: list[Service]) -> Service:
    """HAProxy on LITELLM_PORT in front of the proxy instances, checking each on /health/readiness."""
    config = balancer_config_path(settings)
    frontend = Frontend(
        "proxy", settings.litellm_port, [f"127.0.0.1:{s.port}" for s in instances], bind=settings.litellm_host
    )
    url = settings.proxy_url
    return Service(
        "balancer",
        settings.litellm_port,
        f"{url}/v1",
        lambda: http_ok(f"{url}/health/readiness"),
        Program("balancer", haproxy_argv(config), stop_signal="USR1"),  # USR1: finish the requests in flight
        f"HAProxy in front of {instances[0].name}..{instances[-1].name}",
        stage=3,
        prepare=lambda: write_config(config, [frontend], balancer_stats_socket(settings)),
    )


def balancer_config_path(settings: StackSettings) -> Path:
    return settings.stack_dir / "haproxy.cfg"


def balancer_stats_socket(settings: StackSettings) -> Path:
    return settings.stack_dir / "haproxy.sock"


def app_database_url(settings: StackSettings) -> str:
    """The UI history and agent sessions database, on the hub's server with the hub's credentials."""
    return urlsplit(settings.database_url)._replace(path="/genailabs").geturl()


def people_environment(settings: StackSettings) -> dict[str, str]:
    """The sign-in policy the agent host and the UI share; the master key is blanked: neither needs it."""
    return {
        "SESSION_IDLE_MINUTES": str(settings.session_idle_minutes),
        "LOGIN_MAX_FAILURES": str(settings.login_max_failures),
        "LOGIN_LOCK_MINUTES": str(settings.login_lock_minutes),
        # supervisord hands its whole environment to every program; only the proxy may hold the master key
        # and the Redis URL (its password).
        "LITELLM_MASTER_KEY": "",
        "REDIS_URL": "",
    }


def _agent_host(settings: StackSettings) -> Service:
    argv = [
        str(VENV_BIN / "python"),
        "-m",
        "agent_host",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.agent_host_port),
    ]
    program = Program(
        "agent_host",
        argv,
        # AGENT_HOST_API_KEY, AGENT_HOST_ADMIN_KEY, AGENT_HOST_PROXY_KEY (a service key), DATABASE_URL and
        # HUB_DATABASE_URL come from supervisord's environment (secret_env).
        environment={
            **people_environment(settings),
            "LITELLM_BASE_URL": f"{settings.proxy_url}/v1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            # The stack's own data dir; the exported embedding model stays shared in the repo's .stack/models.
            "CHROMA_PATH": str(settings.stack_dir / "chroma"),
            "NOTES_DIR": str(settings.stack_dir / "notes"),
        },
    )
    url = settings.agent_host_url
    return Service("agent_host", settings.agent_host_port, url, lambda: http_ok(f"{url}/health"), program, stage=4)


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
            "RUNTIME_URLS": f"{settings.ollama_base_url},{settings.runtime2_base_url}",
            # Phase 2: chat, documents (RAG) and agents go through the agent host; UI_VIA_AGENT_HOST=false
            # makes the UI talk to the proxy directly as in phase 1.
            "AGENT_HOST_URL": settings.agent_host_url if settings.ui_via_agent_host else "",
        },
    )
    url = f"http://localhost:{settings.ui_port}"
    return Service("ui", settings.ui_port, url, lambda: http_ok(f"{url}/_stcore/health"), program, stage=5)


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
    return [
        _postgres(settings, external_pg),
        _redis(settings),
        _runtime("runtime", settings.runtime_port, settings.ollama_base_url, external_ollama),
        _runtime("runtime2", settings.runtime2_port, settings.runtime2_base_url, False),
        *proxies,
        *([_balancer(settings, proxies)] if len(proxies) > 1 else []),
        _agent_host(settings),
        _ui(settings),
    ]


def stages(services: list[Service]) -> list[list[Service]]:
    """The services grouped by start stage, in order."""
    return [[s for s in services if s.stage == stage] for stage in sorted({s.stage for s in services})]


def port_conflicts(services: list[Service], managed: Callable[[str], bool], ours: Collection[int] = ()) -> list[str]:
    """Ports another process holds. `ours`: ports our running programs hold (a replica count that changed)."""
    return [
        f"port {service.port} is already in use by another process: stop it, or change the port in .env "
        f"(needed by {service.name})"
        for service in services
        if service.program is not None
        and not managed(service.name)
        and service.port not in ours
        and port_in_use(service.port)
    ]


def save_plan(settings: StackSettings, services: list[Service]) -> None:
    state = {
        "modes": {service.name: "embedded" if service.program else "external" for service in services},
        "ports": {service.name: service.port for service in services if service.program},
        "proxy_replicas": settings.proxy_replicas,
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


def load_ports(settings: StackSettings) -> dict[str, int]:
    """The port of each program the last `up` started."""
    ports = _saved(settings).get("ports")
    return {str(k): int(v) for k, v in ports.items()} if isinstance(ports, dict) else {}


def saved_replicas(settings: StackSettings) -> int | None:
    """PROXY_REPLICAS of the last `up`: `status` shows what runs, whatever the shell now says."""
    replicas = _saved(settings).get("proxy_replicas")
    return replicas if isinstance(replicas, int) else None


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
    env.update(load_keys(settings) or {})
    env.update(load_ui_keys(settings) or {})
    if "PATH" not in os.environ:
        env["PATH"] = "/usr/bin:/bin"
    return env
