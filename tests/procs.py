"""Real service processes for the tests: started on free ports, health-checked, stoppable mid-test."""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack import pg
from devstack.config import REPO_ROOT
from devstack.probe import free_port, http_ok, postgres_ok

PYTHON = sys.executable
# Browser tests write screenshots here; `SCREENSHOTS_DIR=docs/img` refreshes the README's pictures on purpose.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "genailabs-screenshots")
# The session proxy's master key (tests/conftest.py); imported from here because inside a test folder
# `import conftest` finds that folder's own conftest.
MASTER_KEY = "sk-test-master-0123456789"
BIN_DIR = Path(PYTHON).parent
# The suite's one knob for slower machines: every wait (process start-up, browser, polling deadlines) is
# multiplied by it. The base values are already generous; CI on a machine 3x slower than usual sets 3.
TIME_SCALE = float(os.environ.get("TEST_TIME_SCALE") or "1")


def scaled(seconds: float) -> float:
    """A wait, stretched for this machine (TEST_TIME_SCALE)."""
    return seconds * TIME_SCALE


@dataclass
class ManagedProcess:
    """A child process with its own log file, restartable by the tests."""

    name: str
    argv: list[str]
    health: Callable[[], str | None]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))
    startup_timeout: float = 120.0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True
            )
        deadline = time.monotonic() + scaled(self.startup_timeout)
        while (reason := self._health_or_exit()) is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:  # a dead child never gets healthy
                self.stop()
                raise RuntimeError(f"{self.name} did not become healthy: {reason}\n{self.log_tail()}")
            time.sleep(0.3)

    def _health_or_exit(self) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            return f"exited with {self.proc.returncode}"
        return self.health()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class PostgresInstance:
    cluster: pg.Cluster
    process: ManagedProcess
    user: str = "litellm"
    password: str = "litellm"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.cluster.port}/{database}"

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected at once.
        self.process.stop(signal.SIGINT)

    def start(self) -> None:
        self.process.start()

    def new_database(self, prefix: str) -> str:
        """A fresh database on this server (a module's own, as the stack's genailabs is); its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.cluster.bootstrap(self.user, self.password, [name])
        return self.url(name)

    def remove(self) -> None:
        """Stops the server and deletes its cluster: the end of a test's private PostgreSQL."""
        self.stop()
        shutil.rmtree(self.cluster.data_dir.parent, ignore_errors=True)


def start_postgres() -> PostgresInstance:
    base = Path(tempfile.mkdtemp(prefix="genailabs-pg-"))
    base.chmod(0o755)  # the server runs as `postgres` when the tests run as root
    cluster = pg.Cluster(data_dir=base / "pgdata", port=free_port())
    cluster.ensure_initialised()
    process = ManagedProcess("postgres", cluster.server_argv(), health=lambda: None)
    instance = PostgresInstance(cluster=cluster, process=process)

    def ready() -> str | None:
        try:
            cluster.bootstrap(instance.user, instance.password, ["litellm", "genailabs"])
        except pg.PostgresError as exc:
            return str(exc)
        return postgres_ok(instance.url("litellm"))

    instance.process.health = ready
    instance.process.start()
    return instance


def start_runtime(models_dir: Path, port: int | None = None, **env: str) -> tuple[ManagedProcess, str]:
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        f"runtime:{port}",
        [PYTHON, "-m", "local_runtime", "--port", str(port)],
        health=lambda: http_ok(f"{base_url}/api/version"),
        env={"RUNTIME_MODELS_DIR": str(models_dir), **env},
    )
    process.start()
    return process, base_url


def start_proxy(
    master_key: str, database_url: str, runtime_url: str, runtime2_url: str, config: Path | None = None
) -> tuple[ManagedProcess, str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    config = config or REPO_ROOT / "litellm_hub" / "litellm_config.yaml"
    env = {
        "LITELLM_MASTER_KEY": master_key,
        "HUB_DATABASE_URL": database_url,
        "OLLAMA_BASE_URL": runtime_url,
        "RUNTIME2_BASE_URL": runtime2_url,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # Test proxies never spool into the repo's .stack/, where a real stack would pick the rows up.
        "HUB_SPOOL_DIR": os.environ.get("HUB_SPOOL_DIR") or tempfile.mkdtemp(prefix="hub-test-spool-"),
    }
    process = ManagedProcess(
        f"proxy:{port}",
        [
            "env",
            "-u",
            "DATABASE_URL",
            str(BIN_DIR / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        health=lambda: http_ok(f"{base_url}/health/liveliness"),
        env=env,
        startup_timeout=180.0,
    )
    process.start()
    return process, base_url


HOST_KEY = "sk-agent-host-test-key"
# The ONNX export of the embedding model, made once per machine (under a file lock) and reused by every host.
MODEL_CACHE = Path(tempfile.gettempdir()) / "genailabs-test-models"


def start_agent_host(
    proxy_url: str, database_url: str, proxy_key: str, api_key: str = HOST_KEY, **env: str
) -> tuple[ManagedProcess, str]:
    """An agent host with its own data dirs (Chroma, notes, HOME) and no MCP servers unless `env` says otherwise."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = Path(tempfile.mkdtemp(prefix=f"agent-host-{port}-"))
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    servers = data / "mcp_servers.json"
    servers.write_text('{"mcpServers": {}}')
    process = ManagedProcess(
        f"agent_host:{port}",
        [PYTHON, "-m", "agent_host", "--port", str(port)],
        health=lambda: http_ok(f"{url}/health"),
        env={
            "AGENT_HOST_API_KEY": api_key,
            "AGENT_HOST_PROXY_KEY": proxy_key,
            "LITELLM_BASE_URL": f"{proxy_url}/v1",
            "DATABASE_URL": database_url,
            "CHROMA_PATH": str(data / "chroma"),
            "NOTES_DIR": str(data / "notes"),
            "MCP_SERVERS_FILE": str(servers),
            # Never the developer's .stack/ file: servers added at run time stay with this host.
            "MCP_RUNTIME_SERVERS_FILE": str(data / "mcp_servers.runtime.json"),
            "MODEL_CACHE_DIR": str(MODEL_CACHE),
            "HF_HUB_OFFLINE": "1",
            "HOME": str(data),  # proves nothing writes a cache under the user's home (Chroma's default EF)
            **env,
        },
        startup_timeout=120.0,
    )
    process.start()
    return process, url


def start_ui(**env: str) -> tuple[ManagedProcess, str]:
    """The Streamlit UI as `make up` runs it, on a free port, with `env` as its settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        f"ui:{port}",
        [str(BIN_DIR / "streamlit"), "run", str(REPO_ROOT / "streamlit_service" / "main.py"), "--server.port",
         str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        health=lambda: http_ok(f"{url}/_stcore/health"),
        env=env,
    )  # fmt: skip
    process.start()
    return process, url
