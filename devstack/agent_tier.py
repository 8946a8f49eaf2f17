"""The agent host tier `up` runs: the Chroma server, the ingestion workers and the agent host instances.

The hosts and the workers share one environment (the same Settings, agent_host/.env); only the workers serve
their health on a port of their own. Ingestion always runs in the workers (`RAG_INLINE_WORKER=false`), so the
vector store is a server every one of them reaches: a private `chroma run` over `.stack/chroma`, where the
embedded client kept its data (the server reads the same layout), unless CHROMA_URL names one.
"""

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from devstack.config import StackSettings
from devstack.probe import http_ok
from devstack.redis_server import redacted
from devstack.service import Service
from devstack.supervisor import Program

VENV_BIN = Path(sys.executable).parent
# Stages (devstack/services.py holds the ones before): the workers, then the hosts, then the UI.
WORKER_STAGE = 4
HOST_STAGE = 5
UI_STAGE = 7


class ChromaError(RuntimeError):
    """The Chroma server cannot be found; the message says why in one line."""


def find_chroma() -> str:
    """The `chroma` CLI of the chromadb package the agent host pins, from the venv `up` runs in."""
    found = str(VENV_BIN / "chroma") if (VENV_BIN / "chroma").is_file() else shutil.which("chroma")
    if not found:
        raise ChromaError("chroma not found: run `make setup` (installs the chromadb package into .venv)")
    return found


def chroma_heartbeat(url: str) -> str | None:
    return http_ok(f"{url.rstrip('/')}/api/v2/heartbeat")


def chroma(settings: StackSettings) -> Service:
    if settings.chroma_url:
        url = settings.chroma_url
        return Service(
            "chroma",
            0,
            redacted(url),
            lambda: chroma_heartbeat(url),
            None,
            "external server from CHROMA_URL",
            stage=1,
        )
    data = settings.stack_dir / "chroma"
    argv = [find_chroma(), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(settings.chroma_port)]
    url = settings.shared_chroma_url
    return Service(
        "chroma",
        settings.chroma_port,
        url,
        lambda: chroma_heartbeat(url),
        Program("chroma", argv, environment={"ANONYMIZED_TELEMETRY": "False"}),
        stage=1,
        prepare=lambda: data.mkdir(parents=True, exist_ok=True),
        # Its server takes a few seconds to answer: the proxies start meanwhile, the workers after it answers.
        ready_stage=WORKER_STAGE - 1,
        early_health=lambda: None,
    )


def chroma_problem(settings: StackSettings) -> str | None:
    """Why CHROMA_URL, when set, cannot be used; None when it answers (or when the private one is used)."""
    if not settings.chroma_url:
        return None
    reason = chroma_heartbeat(settings.chroma_url)
    return f"CHROMA_URL is set but unusable: {redacted(reason)}" if reason else None


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


def host_environment(settings: StackSettings) -> dict[str, str]:
    """What every agent host and every worker gets besides supervisord's environment.

    AGENT_HOST_API_KEY, AGENT_HOST_ADMIN_KEY, AGENT_HOST_PROXY_KEY (a service key), DATABASE_URL,
    HUB_DATABASE_URL and a CHROMA_URL of the operator's come from supervisord's environment (secret_env).
    """
    environment = {
        **people_environment(settings),
        "LITELLM_BASE_URL": f"{settings.proxy_url}/v1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # The stack's own data dir; the exported embedding model stays shared in the repo's .stack/models.
        "CHROMA_PATH": str(settings.stack_dir / "chroma"),
        # Ingestion runs in the rag_worker programs, never inside a host.
        "RAG_INLINE_WORKER": "false",
    }
    if not settings.chroma_url:
        environment["CHROMA_URL"] = settings.shared_chroma_url
    return environment


# supervisord hands its whole environment to every program: a worker calls no model and serves no person, so the
# hosts' and the UI's keys and the hub's database URL are blanked for it (it reads only DATABASE_URL).
WORKER_BLANKED = (
    "AGENT_HOST_API_KEY",
    "AGENT_HOST_ADMIN_KEY",
    "AGENT_HOST_PROXY_KEY",
    "LITELLM_API_KEY",
    "UI_COOKIE_SECRET",
    "HUB_DATABASE_URL",
)


def worker_names(settings: StackSettings) -> list[str]:
    return [f"rag_worker{index}" for index in range(1, settings.rag_workers + 1)]


def workers(settings: StackSettings) -> list[Service]:
    services = []
    for name, port in zip(worker_names(settings), settings.rag_worker_ports, strict=True):
        environment = {
            **host_environment(settings),
            **dict.fromkeys(WORKER_BLANKED, ""),
            "RAG_WORKER_HOST": "127.0.0.1",
            "RAG_WORKER_PORT": str(port),
        }
        program = Program(name, [str(VENV_BIN / "python"), "-m", "agent_host.worker"], environment=environment)
        url = f"http://localhost:{port}"
        services.append(
            Service(name, port, url, _answers(f"{url}/health/ready"), program, "ingestion worker", stage=WORKER_STAGE)
        )
    return services


def host_names(settings: StackSettings) -> list[str]:
    """`agent_host` alone, or `agent_host1`..`agent_hostN` behind the balancer."""
    if settings.agent_host_replicas == 1:
        return ["agent_host"]
    return [f"agent_host{index}" for index in range(1, settings.agent_host_replicas + 1)]


def hosts(settings: StackSettings) -> list[Service]:
    services = []
    for name, port in zip(host_names(settings), settings.agent_host_instance_ports, strict=True):
        argv = [str(VENV_BIN / "python"), "-m", "agent_host", "--host", "127.0.0.1", "--port", str(port)]
        url = f"http://localhost:{port}"
        note = "" if name == "agent_host" else "instance behind the balancer"
        services.append(
            Service(
                name,
                port,
                url,
                _answers(f"{url}/health"),
                Program(name, argv, environment=host_environment(settings)),
                note,
                stage=HOST_STAGE,
            )
        )
    return services


def _answers(url: str) -> Callable[[], str | None]:
    return lambda: http_ok(url)
