"""Settings of the accounts CLI, read from the environment and accounts/.env (the services read their own)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from genailabs_accounts.store import AccountPolicy

PACKAGE_DIR = Path(__file__).resolve().parent.parent


class AccountSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=PACKAGE_DIR / ".env", extra="ignore")

    # The `genailabs` database (accounts live there) and the hub's (each person's proxy key); the defaults are
    # `make up`'s, as in the agent host's settings.
    database_url: SecretStr = SecretStr("postgresql://litellm:litellm@localhost:5433/genailabs")
    hub_database_url: SecretStr = SecretStr("postgresql://litellm:litellm@localhost:5433/litellm")
    session_idle_minutes: int = Field(default=120, ge=1, le=60 * 24 * 30)
    login_max_failures: int = Field(default=10, ge=1, le=1000)
    login_lock_minutes: int = Field(default=15, ge=1, le=60 * 24)

    def policy(self) -> AccountPolicy:
        return AccountPolicy(
            session_idle_minutes=self.session_idle_minutes,
            login_max_failures=self.login_max_failures,
            login_lock_minutes=self.login_lock_minutes,
        )


@lru_cache
def get_settings() -> AccountSettings:
    return AccountSettings()
