"""What the `make up` tests share: one stack on free ports, switched in place between configurations, and a chat.

Bringing a stack up from nothing costs about a minute on a 2-core machine, and changing RUNTIME_REPLICAS,
PROXY_REPLICAS, AGENT_HOST_REPLICAS or RAG_WORKERS in place less than that: so every module that needs a running
stack uses the session's one (the `stack` fixture in conftest.py) and asks it for the configuration it tests.
"""

import os
import random
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.config import REPO_ROOT, StackSettings
from devstack.probe import free_port, port_in_use
from procs import scaled

MASTER_KEY = "sk-stack-test-master-key"
# Characters that break an unencoded URL: `up` builds DATABASE_URL itself, and must encode them.
PASSWORD = "pw@stack:1/2#3%?"
SINGLE = {"RUNTIME_REPLICAS": "1", "PROXY_REPLICAS": "1", "AGENT_HOST_REPLICAS": "1", "RAG_WORKERS": "1"}
# Everything doubled, the runtimes too: the proxies then route the smollm2 group to both.
SCALED = {"RUNTIME_REPLICAS": "2", "PROXY_REPLICAS": "2", "AGENT_HOST_REPLICAS": "2", "RAG_WORKERS": "2"}


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_run(count: int) -> int:
    """A base port whose next `count` ports are all free, below the ephemeral range.

    The instances' ports are bound minutes after they are chosen (when the stack is switched to more replicas);
    a port of the ephemeral range may meanwhile be taken as the local end of some connection, or by a test
    elsewhere on the machine that asked the kernel for a free port (LiteLLM then hangs instead of exiting).
    """
    low = _ephemeral_range()[0]
    for _ in range(200):
        base = random.randrange(20000, low - count - 1)
        if not any(port_in_use(base + i) or not _bindable(base + i) for i in range(1, count + 1)):
            return base
    raise RuntimeError("no run of free ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def stack_environment(stack_dir: Path, master_key: str = MASTER_KEY, **settings: str) -> dict[str, str]:
    """A stack of its own under `stack_dir`, every port free, nothing from the developer's shell that would
    point it elsewhere; `settings` add or override."""
    env = {
        **os.environ,
        "STACK_DIR": str(stack_dir),
        "POSTGRES_PORT": str(free_port()),
        # No DATABASE_URL: `up` builds it, and a password that breaks an unencoded URL proves it encodes it.
        "POSTGRES_PASSWORD": PASSWORD,
        "OLLAMA_BASE_URL": f"http://localhost:{free_port()}",
        "RUNTIME2_PORT": str(free_port()),
        "LITELLM_PORT": str(free_port()),
        "LITELLM_MASTER_KEY": master_key,
        "UI_PORT": str(free_port()),
        "AGENT_HOST_PORT": str(free_port()),
        "REDIS_PORT": str(free_port()),
        "CHROMA_PORT": str(free_port()),
        "PROXY_INTERNAL_PORT_BASE": str(free_run(2)),
        "AGENT_HOST_INTERNAL_PORT_BASE": str(free_run(2)),
        "RAG_WORKER_PORT_BASE": str(free_run(2)),
        **SINGLE,
        **settings,
    }
    for name in ("MAKEFLAGS", "DATABASE_URL", "REDIS_URL", "CHROMA_URL"):
        if name not in settings:
            env.pop(name, None)
    return env


def make(target: str, env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=scaled(timeout),
    )  # fmt: skip


def devstack_up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m devstack up` straight (no make): for the refusals that come before anything starts."""
    return subprocess.run(
        [str(REPO_ROOT / ".venv/bin/python"), "-m", "devstack", "up"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=scaled(60),
    )  # fmt: skip


@dataclass
class Stack:
    """The session's stack: `up(configuration)` runs `make up` only when the configuration differs from the
    running one (or nothing runs), so consecutive modules of one configuration share one start."""

    env: dict[str, str]
    running: dict[str, str] | None = None
    last_up: subprocess.CompletedProcess[str] | None = None
    # Every port any configuration held: `make down` must free them all.
    ports: set[int] = field(default_factory=set)

    @classmethod
    def create(cls) -> "Stack":
        stack_dir = Path(tempfile.mkdtemp(prefix="genailabs-stack-"))
        stack_dir.chmod(0o755)  # PostgreSQL runs as `postgres` when the tests run as root
        return cls(stack_environment(stack_dir))

    def up(self, configuration: dict[str, str]) -> subprocess.CompletedProcess[str]:
        if self.running == configuration and self.last_up is not None and self.last_up.returncode == 0:
            return self.last_up
        self.env.update(configuration)
        self.last_up = make("up", self.env, 600)
        self.running = configuration if self.last_up.returncode == 0 else None
        self.ports.update(port for port in self.settings().agent_host_instance_ports)
        self.ports.update(self.settings().proxy_instance_ports + self.settings().rag_worker_ports)
        return self.last_up

    def down(self) -> subprocess.CompletedProcess[str]:
        self.running = None
        return make("down", self.env)

    @property
    def dir(self) -> Path:
        return Path(self.env["STACK_DIR"])

    def settings(self) -> StackSettings:
        """The stack's settings as `up` read them (for Supervisor, plan and the ports)."""
        names = {
            name.lower(): value
            for name, value in self.env.items()
            if name.endswith(("_PORT", "_PORT_BASE", "_REPLICAS", "_WORKERS")) or name in ("POSTGRES_PASSWORD",)
        }
        return StackSettings(
            stack_dir=self.dir,
            litellm_master_key=self.env["LITELLM_MASTER_KEY"],
            ollama_base_url=self.env["OLLAMA_BASE_URL"],
            database_url="",
            **names,  # type: ignore[arg-type]  # pydantic converts the strings
        )

    def url(self, port_name: str) -> str:
        return f"http://localhost:{self.env[port_name]}"


def chat_status(client: httpx.Client, url: str, key: str) -> int:
    """One short chat's HTTP status; 0 when no answer came at all."""
    try:
        return client.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        ).status_code
    except httpx.HTTPError:
        return 0
