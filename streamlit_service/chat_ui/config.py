"""The UI's settings: one class, read from streamlit_service/.env and the environment."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from genailabs_accounts.secret_files import secrets_from_files

SERVICE_DIR = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    # Errors never echo the input: it holds the keys.
    model_config = SettingsConfigDict(env_file=SERVICE_DIR / ".env", extra="ignore", hide_input_in_errors=True)

    litellm_base_url: str = "http://localhost:4100/v1"
    litellm_api_key: SecretStr
    # Or a file holding it (LITELLM_API_KEY_FILE: compose's keys-init service writes one); the variable wins.
    litellm_api_key_file: Path | None = None
    # Phase 2: when set, chat goes to the agent host (same OpenAI wire format) instead of the proxy.
    agent_host_url: str = ""
    # Signs the sign-in cookie; `make up` writes one. Unset: a random one per process (sign-ins end on restart),
    # refused where the UI is published beyond loopback.
    ui_cookie_secret: SecretStr | None = None
    # Or a file holding it (UI_COOKIE_SECRET_FILE, as for the key above).
    ui_cookie_secret_file: Path | None = None
    # A sign-in ends after this long without a request; failed sign-ins for one login are slowed after a few,
    # and after LOGIN_MAX_FAILURES the login is locked for LOGIN_LOCK_MINUTES (the agent host's same settings).
    session_idle_minutes: int = Field(default=120, ge=1, le=60 * 24 * 30)
    login_max_failures: int = Field(default=10, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)
    # Where compose publishes the UI (its BIND_ADDRESS); empty: the address Streamlit binds.
    published_address: str = ""
    database_url: SecretStr = SecretStr("postgresql://litellm:litellm@localhost:5433/genailabs")
    # The hub's request log, for the Usage page.
    hub_database_url: SecretStr = SecretStr("postgresql://litellm:litellm@localhost:5433/litellm")
    # Model runtimes behind the proxy (Ollama API), probed for the status panel and the served marking: `make up`
    # passes the ones it runs (11434, and 11435 with RUNTIME_REPLICAS=2).
    runtime_urls: Annotated[list[str], NoDecode] = ["http://localhost:11434"]

    request_timeout: float = Field(default=120.0, gt=0)
    # Seconds between two status checks in the sidebar.
    status_interval: float = Field(default=5.0, ge=1)
    probe_timeout: float = Field(default=2.0, gt=0)
    default_model: str = "smollm2:135m"
    max_tokens_limit: int = Field(default=4096, ge=16)
    title_from_model: bool = True

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        return secrets_from_files(data, "litellm_api_key", "ui_cookie_secret")

    @field_validator("runtime_urls", mode="before")
    @classmethod
    def split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip().rstrip("/") for url in value.split(",") if url.strip()]
        return value

    @property
    def proxy_root(self) -> str:
        return self.litellm_base_url.rstrip("/").removesuffix("/v1")


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # the API key comes from .env
