"""The hub's settings: one class, read from the environment and litellm_hub/.env."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.spool import DEFAULT_MAX_BYTES

HUB_DIR = Path(__file__).resolve().parent.parent
# The native stack keeps runtime state under the repo's .stack/; the launcher passes HUB_SPOOL_DIR anyway.
DEFAULT_SPOOL_DIR = HUB_DIR.parent / ".stack"


class HubSettings(BaseSettings):
    # The seed's values in .env.example are the defaults (as for `make up`); .env and the environment override.
    model_config = SettingsConfigDict(env_file=(HUB_DIR / ".env.example", HUB_DIR / ".env"), extra="ignore")

    # Not DATABASE_URL: LiteLLM would see that name and start its own Prisma database layer.
    hub_database_url: SecretStr = SecretStr("postgresql://litellm:litellm@localhost:5433/litellm")
    litellm_master_key: SecretStr
    # Seconds a key check is trusted without asking PostgreSQL: a revocation takes effect within this.
    hub_key_cache_ttl: float = Field(default=30.0, ge=0)
    # Seconds a key checked before a database outage keeps working while PostgreSQL is unreachable.
    hub_key_stale_grace: float = Field(default=900.0, ge=0)
    # Seconds without trying PostgreSQL again after it failed, so an outage costs no per-request timeouts.
    hub_db_retry_after: float = Field(default=5.0, gt=0)
    hub_db_connect_timeout: float = Field(default=2.0, gt=0)
    hub_log_batch_size: int = Field(default=200, ge=1)
    hub_log_flush_interval: float = Field(default=1.0, gt=0)
    # Request-log rows held in memory while PostgreSQL is down; beyond this they go to the spool file.
    hub_log_buffer_limit: int = Field(default=5000, ge=1)
    hub_spool_dir: Path = DEFAULT_SPOOL_DIR
    # Where clients reach the proxy when that is not where it binds (compose sets it from BIND_ADDRESS).
    published_address: str = ""
    # The spool file's cap: rows beyond it are dropped (with a warning) rather than fill the disk.
    hub_spool_max_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1)
    # Where the proxy instances share rate limits, cooldowns and the response cache (LiteLLM reads the same
    # REDIS_URL itself). Unset: each instance keeps them in its own memory.
    redis_url: SecretStr = SecretStr("")
    # Seconds a cached answer to a deterministic request (temperature 0 or a fixed seed) is served again.
    hub_cache_ttl_seconds: int = Field(default=600, ge=1, le=7 * 24 * 3600)
    # Seconds between the hub's Redis checks, which say in the log and in /health/hub when sharing stops.
    hub_redis_check_interval: float = Field(default=2.0, gt=0)

    @field_validator("litellm_master_key")
    @classmethod
    def _master_key_is_set(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("LITELLM_MASTER_KEY is empty")
        return value

    @property
    def spool_path(self) -> Path:
        return self.hub_spool_dir / "hub-usage-spool.jsonl"


@lru_cache
def get_settings() -> HubSettings:
    return HubSettings()  # type: ignore[call-arg]  # the master key comes from the environment
