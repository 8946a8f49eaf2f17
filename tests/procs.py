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
from typing import TYPE_CHECKING, Any

import httpx

from devstack import pg
from devstack.balancer import Frontend, haproxy_argv, server_states, write_config
from devstack.config import REPO_ROOT
from devstack.probe import free_port, http_ok, postgres_ok
from devstack.redis_server import RedisServer, redis_ok
from devstack.services import SHARED_HEALTH_CHECK_TTL

if TYPE_CHECKING:
    from genailabs_accounts.models import Account

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
    master_key: str,
    database_url: str,
    runtime_url: str,
    runtime2_url: str | None = None,
    config: Path | None = None,
    redis_url: str | None = None,
    **env: str,
) -> tuple[ManagedProcess, str]:
    """A LiteLLM proxy with the hub on a free port; `redis_url` (REDIS_URL) shares its state, `env` adds settings.

    Proxies on one Redis share their health-check rounds (use_shared_health_check): one whose backends differ
    from the other test proxies' needs a Redis of its own (start_redis) for its /v1/models to be its own.

    With `runtime2_url` the smollm2 group has a deployment on each runtime (`make up` with RUNTIME_REPLICAS=2),
    without it one (the default `make up`), unless `config` says otherwise."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    name = "litellm_config.yaml" if runtime2_url is None else "litellm_config.runtime2.yaml"
    config = config or REPO_ROOT / "litellm_hub" / name
    settings = {
        "LITELLM_MASTER_KEY": master_key,
        "HUB_DATABASE_URL": database_url,
        "OLLAMA_BASE_URL": runtime_url,
        **({"RUNTIME2_BASE_URL": runtime2_url} if runtime2_url is not None else {}),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # Test proxies never spool into the repo's .stack/, where a real stack would pick the rows up.
        "HUB_SPOOL_DIR": os.environ.get("HUB_SPOOL_DIR") or tempfile.mkdtemp(prefix="hub-test-spool-"),
        # None: the test process's one shared Redis (a proxy needs one, as `make up` gives it one).
        "REDIS_URL": redis_url or shared_redis().url,
        "DEFAULT_SHARED_HEALTH_CHECK_TTL": SHARED_HEALTH_CHECK_TTL,  # as make up's proxies
        **env,
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
        env=settings,
        startup_timeout=180.0,
    )
    process.start()
    return process, base_url


@dataclass
class RedisInstance:
    """A private redis-server (devstack's config: password in its 0600 config file) on a free port."""

    server: RedisServer
    process: ManagedProcess

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

    def start(self) -> None:
        self.process.start()

    def remove(self) -> None:
        """Stops the server and deletes its dir: the end of a test's private Redis."""
        self.stop()
        shutil.rmtree(self.server.base_dir, ignore_errors=True)


def start_redis() -> RedisInstance:
    server = RedisServer(base_dir=Path(tempfile.mkdtemp(prefix="genailabs-redis-")), port=free_port())
    server.ensure_config()
    process = ManagedProcess(
        f"redis:{server.port}", server.server_argv(), health=lambda: redis_ok(server.url), startup_timeout=30.0
    )
    process.start()
    return RedisInstance(server=server, process=process)


_shared_redis: list[RedisInstance] = []


def shared_redis() -> RedisInstance:
    """One Redis for every proxy a test starts without its own, started on first use and removed at exit."""
    if not _shared_redis:
        instance = start_redis()
        atexit.register(instance.remove)
        _shared_redis.append(instance)
    return _shared_redis[0]


def start_balancer(
    backends: list[str],
    health_path: str = "/health/readiness",
    wait_for_all: bool = True,
    replay_only_reads: bool = False,
) -> tuple[ManagedProcess, str]:
    """HAProxy (devstack's config) on a free port in front of those base URLs; its base URL.

    It is returned once it answers `health_path` through a backend and, with `wait_for_all`, once HAProxy's own
    checks call every backend UP."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = Path(tempfile.mkdtemp(prefix="genailabs-haproxy-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    config, stats = base / "haproxy.cfg", base / "stats.sock"
    write_config(
        config, [Frontend("balanced", port, backends, health_path, replay_only_reads=replay_only_reads)], stats
    )

    def ready() -> str | None:
        reason = http_ok(f"{url}{health_path}")
        if reason is not None or not wait_for_all:
            return reason
        try:
            servers = server_states(stats).get("balanced", {})
        except OSError as exc:
            return f"stats socket: {exc}"
        down = [name for name, state in servers.items() if state != "UP"]
        return f"not UP yet: {', '.join(down)}" if down or not servers else None

    process = ManagedProcess(f"balancer:{port}", haproxy_argv(config), health=ready, startup_timeout=60.0)
    process.start()
    return process, url


HOST_KEY = "sk-agent-host-test-key"
# The ONNX export of the embedding model, made once per machine (under a file lock) and reused by every host.
MODEL_CACHE = Path(tempfile.gettempdir()) / "genailabs-test-models"
# The first admin of every database a test host runs on; the operator keys (HOST_KEY) stand for this person.
HOST_ADMIN_PASSWORD = "host-admin-password-0123"
_service_keys: dict[str, str] = {}


def hub_url_of(database_url: str) -> str:
    """The hub's database (`litellm`) on the same server as a `genailabs` database."""
    return database_url.rsplit("/", 1)[0] + "/litellm"


def host_admin_login(database_url: str) -> str:
    """`admin` on the stack's `genailabs`; a module's own database gets its own (each person has one proxy key
    in the shared hub database, under the alias `user:<login>`)."""
    name = database_url.rsplit("/", 1)[1]
    return "admin" if name == "genailabs" else f"admin.{name}"[:64]


def ensure_host_admin(database_url: str) -> "Account | None":
    """The first admin of that database (made with its proxy key if missing); None when it is unreachable."""
    from genailabs_accounts.errors import AccountsUnavailable
    from genailabs_accounts.store import AccountStore

    store = AccountStore(database_url, hub_url_of(database_url))
    try:
        return store.ensure_first_admin(host_admin_login(database_url), HOST_ADMIN_PASSWORD)[0]
    except AccountsUnavailable:
        return None  # a test of a host whose database is down
    finally:
        store.close()


def host_proxy_key(proxy_key: str, hub_url: str) -> str:
    """The proxy key a test host gets: for the session proxy's master key, a service key made once per hub
    database (as `make up` gives the host one); any other key (a fake model server's) unchanged."""
    if proxy_key != MASTER_KEY:
        return proxy_key
    if hub_url not in _service_keys:
        from hub.errors import DatabaseUnavailable

        try:
            _service_keys[hub_url] = make_service_key(hub_url, "agent-host-test")
        except DatabaseUnavailable:
            return proxy_key  # no hub database to make it in: the master key may act for people too
    return _service_keys[hub_url]


# Queue heartbeats for tests: a worker silent this long has its job given to another (see the worker's settings).
QUICK_QUEUE = {"RAG_WORKER_HEARTBEAT_SECONDS": "1", "RAG_WORKER_STALLED_SECONDS": str(scaled(5.0))}


def start_agent_host(
    proxy_url: str, database_url: str, proxy_key: str, api_key: str = HOST_KEY, **env: str
) -> tuple[ManagedProcess, str]:
    """An agent host with its own data dirs (Chroma, HOME) and no MCP servers unless `env` says otherwise.

    Its database gets a first admin (the person HOST_KEY stands for) and, instead of the master key, the host
    calls the proxy with a service key that names the person of each request."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = Path(tempfile.mkdtemp(prefix=f"agent-host-{port}-"))
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    servers = data / "mcp_servers.json"
    servers.write_text('{"mcpServers": {}}')
    hub_url = hub_url_of(database_url)
    ensure_host_admin(database_url)
    process = ManagedProcess(
        f"agent_host:{port}",
        [PYTHON, "-m", "agent_host", "--port", str(port)],
        health=lambda: http_ok(f"{url}/health"),
        env={
            "AGENT_HOST_API_KEY": api_key,
            "AGENT_HOST_PROXY_KEY": host_proxy_key(proxy_key, hub_url),
            "LITELLM_BASE_URL": f"{proxy_url}/v1",
            "DATABASE_URL": database_url,
            "HUB_DATABASE_URL": hub_url,
            "CHROMA_PATH": str(data / "chroma"),
            "MCP_SERVERS_FILE": str(servers),
            # Never the developer's .stack/ file (the legacy file a host imports once); servers added through
            # the API live in DATABASE_URL, shared by every host on it.
            "MCP_RUNTIME_SERVERS_FILE": str(data / "mcp_servers.runtime.json"),
            "MODEL_CACHE_DIR": str(MODEL_CACHE),
            "HF_HUB_OFFLINE": "1",
            "HOME": str(data),  # proves nothing writes a cache under the user's home (Chroma's default EF)
            # A killed host's (or worker's) ingestion job is handed to another within seconds, not 20.
            **QUICK_QUEUE,
            **env,
        },
        startup_timeout=120.0,
    )
    process.start()
    return process, url


def start_chroma_server(path: Path) -> tuple[ManagedProcess, str]:
    """`chroma run` (the chromadb package's server) on a free port over `path`; its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        f"chroma:{port}",
        [str(BIN_DIR / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        health=lambda: http_ok(f"{url}/api/v2/heartbeat"),
        env={"ANONYMIZED_TELEMETRY": "False", "HOME": str(path)},
        startup_timeout=60.0,
    )
    process.start()
    return process, url


def start_rag_worker(database_url: str, chroma_url: str, **env: str) -> tuple[ManagedProcess, str]:
    """An ingestion worker (`python -m agent_host.worker`) on the queue in `database_url`; its health URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    home = Path(tempfile.mkdtemp(prefix=f"rag-worker-{port}-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    process = ManagedProcess(
        f"rag_worker:{port}",
        [PYTHON, "-m", "agent_host.worker"],
        health=lambda: http_ok(f"{url}/health/ready"),
        env={
            "DATABASE_URL": database_url,
            "CHROMA_URL": chroma_url,
            "RAG_WORKER_PORT": str(port),
            "MODEL_CACHE_DIR": str(MODEL_CACHE),
            "HF_HUB_OFFLINE": "1",
            "HOME": str(home),
            **QUICK_QUEUE,
            **env,
        },
        startup_timeout=120.0,
    )
    process.start()
    return process, url


def start_ui(**env: str) -> tuple[ManagedProcess, str]:
    """The Streamlit UI as `make up` runs it (app.py: the pages behind /signin), on a free port, `env` its settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess(
        f"ui:{port}",
        [str(BIN_DIR / "streamlit"), "run", str(REPO_ROOT / "streamlit_service" / "app.py"), "--server.port",
         str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        health=lambda: http_ok(f"{url}/_stcore/health"),
        env=env,
    )  # fmt: skip
    process.start()
    return process, url


# The account the UI tests sign in with unless they need another (an admin: every page is open to it).
UI_ADMIN_LOGIN = "ui-admin"
UI_PASSWORD = "ui-test-password-0123"
UI_SESSION_COOKIE = "genailabs_session"


def ensure_account(
    database_url: str, hub_url: str, login: str, password: str = UI_PASSWORD, role: str = "admin", **limits: Any
) -> "Account":
    """The account `login` in that `genailabs` database, made (with its proxy key) or reset to this password,
    role and limits, and enabled."""
    from genailabs_accounts.errors import LoginTaken
    from genailabs_accounts.store import AccountStore

    store = AccountStore(database_url, hub_url)
    try:
        try:
            return store.create_account(login, password, name=login.title(), role=role, **limits)
        except LoginTaken:
            account = next(a for a in store.list_accounts() if a.login == login.lower())
        if account.disabled:
            store.set_disabled(account.id, False)
        store.reset_password(account.id, password)
        store.set_role(account.id, role)
        if limits:
            store.set_limits(account.id, limits.get("models", ()), limits.get("rpm"), limits.get("max_budget"))
        return store.get(account.id)
    finally:
        store.close()


def sign_in(ui_url: str, login: str = UI_ADMIN_LOGIN, password: str = UI_PASSWORD) -> str:
    """Signs in through the UI's /signin form as a browser would; the `genailabs_session` cookie's value."""
    reply = httpx.post(
        f"{ui_url}/signin",
        data={"login": login, "password": password},
        headers={"Origin": ui_url},
        timeout=scaled(30),
    )
    cookie = reply.cookies.get(UI_SESSION_COOKIE)
    if reply.status_code != 303 or not cookie:
        raise RuntimeError(f"sign-in as {login} failed: {reply.status_code} {reply.text[:200]}")
    return cookie


def make_service_key(hub_url: str, alias: str = "ui-service") -> str:
    """A new hub service key (it may act for a person with X-GenAILabs-User): what `make up` gives the UI."""
    from hub.keystore import KeyStore, connect

    with connect(hub_url, scaled(10)) as conn:
        store = KeyStore(conn)
        key, _ = store.create(f"{alias}-{uuid.uuid4().hex[:8]}", [], metadata={"service": True})
    return key
