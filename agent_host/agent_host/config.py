"""Agent host settings, read from the environment and agent_host/.env."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_DIR = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=SERVICE_DIR / ".env", extra="ignore")

    # Clients send this as `Authorization: Bearer ...` on every route but health.
    agent_host_api_key: SecretStr
    litellm_base_url: str = "http://localhost:4100/v1"
    # The host's own virtual key on the proxy (python -m hub.keys create --alias agent-host).
    agent_host_proxy_key: SecretStr
    database_url: SecretStr = SecretStr("postgresql://litellm:litellm@localhost:5433/genailabs")
    host: str = "127.0.0.1"
    port: int = 8000

    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    proxy_timeout: float = Field(default=120.0, gt=0)
    db_timeout: float = Field(default=2.0, gt=0)
    # Context windows by model, overriding what the proxy and runtime report, e.g. {"smollm2:135m": 512}.
    context_windows: dict[str, int] = Field(default_factory=dict)
    # Ollama-style runtimes serve num_ctx tokens, not the model's trained length: the window when nothing says less.
    default_context_window: int = Field(default=2048, ge=128)
    # Tokens of the window left unplanned: chat templates and a runtime's default system prompt add some.
    context_margin: int = Field(default=40, ge=0)
    # Tokens kept free for the reply when the client does not set max_tokens.
    reply_tokens: int = Field(default=256, ge=8)
    # Recent messages kept verbatim when older ones are folded into the summary.
    recent_messages: int = Field(default=4, ge=0)
    summary_tokens: int = Field(default=128, ge=16)
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # required values come from the environment
