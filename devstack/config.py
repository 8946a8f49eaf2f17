"""Stack settings, read from litellm_hub/.env (the seed's names) and the environment."""

from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(REPO_ROOT / "litellm_hub" / ".env.example", REPO_ROOT / "litellm_hub" / ".env"),
        extra="ignore",
    )

    postgres_user: str = "litellm"
    postgres_password: str = "litellm"
    postgres_db: str = "litellm"
    postgres_port: int = 5433
    # Databases created next to POSTGRES_DB: the UI history and agent sessions live here.
    app_databases: list[str] = ["genailabs"]
    # Unset: built from the POSTGRES_* parts above. Set it to use a server of your own.
    database_url: str = ""

    litellm_master_key: str
    litellm_port: int = 4100
    litellm_host: str = "127.0.0.1"
    ollama_base_url: str = "http://localhost:11434"
    # The embedded model runtimes (issue 14). One uses the whole machine; a second one on RUNTIME2_PORT gives
    # the proxy a failover target (the smollm2 group gets a deployment on each), each with half the cores.
    runtime_replicas: int = Field(default=1, ge=1, le=2)
    runtime2_port: int = 11435
    # Passed to every runtime when set; unset: one runtime takes its own default (the machine's physical
    # cores), two get half of them each.
    runtime_threads: int | None = Field(default=None, ge=1)
    ui_port: int = 8501
    agent_host_port: int = 8000
    ui_via_agent_host: bool = True

    # People (issue 11). The first admin's login, and its password when set (else `up` prints a one-time one).
    admin_login: str = "admin"
    admin_password: SecretStr | None = None
    # Passed to the agent host and the UI: sign-ins idle this long end; failed sign-ins slow, then lock a login.
    session_idle_minutes: int = Field(default=120, ge=1, le=60 * 24 * 30)
    login_max_failures: int = Field(default=10, ge=1, le=1000)
    login_lock_minutes: int = Field(default=15, ge=1, le=60 * 24)

    # The proxy tier (issue 12). More than one: instances proxy1..proxyN on PROXY_INTERNAL_PORT_BASE+1..+N
    # (loopback only) behind HAProxy on LITELLM_PORT.
    proxy_replicas: int = Field(default=1, ge=1, le=8)
    proxy_internal_port_base: int = Field(default=4110, ge=1, le=65535 - 8)
    # Shared state of the proxies (limits, cooldowns, the response cache). Empty: a private redis-server on
    # REDIS_PORT under .stack/redis; set: that Redis (it may hold a password: it is treated as a secret).
    redis_url: str = ""
    redis_port: int = 6380
    redis_maxmemory: str = "256mb"
    # Passed to the proxies when set (the hub's default otherwise).
    hub_cache_ttl_seconds: int | None = None

    # The agent host tier (issue 13). More than one: instances agent_host1..agent_hostN on
    # AGENT_HOST_INTERNAL_PORT_BASE+1..+N (loopback only) behind the same HAProxy, on AGENT_HOST_PORT.
    agent_host_replicas: int = Field(default=1, ge=1, le=8)
    agent_host_internal_port_base: int = Field(default=8010, ge=1, le=65535 - 8)
    # Ingestion workers (`python -m agent_host.worker`), rag_worker1..N, each serving its health on
    # RAG_WORKER_PORT_BASE+i.
    rag_workers: int = Field(default=1, ge=1, le=8)
    rag_worker_port_base: int = Field(default=8090, ge=1, le=65535 - 8)
    # The vector store the hosts and workers share. Empty: a private `chroma run` server on CHROMA_PORT over
    # .stack/chroma (the layout the embedded client kept); set: that server.
    chroma_url: str = ""
    chroma_port: int = 8001

    stack_dir: Path = REPO_ROOT / ".stack"
    # Seconds `up` waits for each service to become healthy.
    start_timeout: float = 120.0

    @model_validator(mode="after")
    def _database_url_from_parts(self) -> "StackSettings":
        if not self.database_url:
            self.database_url = postgres_url(
                self.postgres_user, self.postgres_password, "localhost", self.postgres_port, self.postgres_db
            )
        return self

    @property
    def runtime_port(self) -> int:
        return int(self.ollama_base_url.rstrip("/").rsplit(":", 1)[-1])

    @property
    def runtime2_base_url(self) -> str:
        return f"http://localhost:{self.runtime2_port}"

    @property
    def runtime_urls(self) -> list[str]:
        """The base URL of each runtime the proxy routes to: OLLAMA_BASE_URL, then the second one if any."""
        return [self.ollama_base_url, self.runtime2_base_url][: self.runtime_replicas]

    @property
    def proxy_url(self) -> str:
        return f"http://localhost:{self.litellm_port}"

    @property
    def agent_host_url(self) -> str:
        return f"http://localhost:{self.agent_host_port}"

    @property
    def proxy_instance_ports(self) -> list[int]:
        """Where each proxy instance listens: LITELLM_PORT itself when there is one, else internal ports."""
        if self.proxy_replicas == 1:
            return [self.litellm_port]
        return [self.proxy_internal_port_base + index for index in range(1, self.proxy_replicas + 1)]

    @property
    def agent_host_instance_ports(self) -> list[int]:
        """Where each agent host listens: AGENT_HOST_PORT itself when there is one, else internal ports."""
        if self.agent_host_replicas == 1:
            return [self.agent_host_port]
        base = self.agent_host_internal_port_base
        return [base + index for index in range(1, self.agent_host_replicas + 1)]

    @property
    def rag_worker_ports(self) -> list[int]:
        return [self.rag_worker_port_base + index for index in range(1, self.rag_workers + 1)]

    @property
    def shared_chroma_url(self) -> str:
        return self.chroma_url or f"http://127.0.0.1:{self.chroma_port}"

    @property
    def logs_dir(self) -> Path:
        return self.stack_dir / "logs"


def postgres_url(user: str, password: str, host: str, port: int, database: str) -> str:
    """A PostgreSQL URL whose user and password may hold any character (`@`, `/`, `:`...)."""
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(database, safe='')}"


@lru_cache
def get_settings() -> StackSettings:
    return StackSettings()  # type: ignore[call-arg]  # the master key comes from .env
