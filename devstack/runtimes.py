"""The model runtimes `up` runs (RUNTIME_REPLICAS of them) and the proxy config that routes to exactly those."""

import os
import sys
from pathlib import Path

import psutil

from devstack.config import REPO_ROOT, StackSettings
from devstack.probe import http_ok
from devstack.service import Service
from devstack.supervisor import Program

VENV_BIN = Path(sys.executable).parent
RUNTIME_STAGE = 1
PROXY_CONFIG = REPO_ROOT / "litellm_hub" / "litellm_config.yaml"
# The same config plus the smollm2 group's deployment on RUNTIME2_BASE_URL (it `include`s the one above).
PROXY_CONFIG_TWO_RUNTIMES = REPO_ROOT / "litellm_hub" / "litellm_config.runtime2.yaml"


def physical_cores() -> int:
    """The machine's physical cores (llama.cpp gains nothing from a core's second hardware thread)."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def runtime_threads(settings: StackSettings) -> int | None:
    """RUNTIME_THREADS for each runtime: the operator's, or half the cores each when two share the machine;
    None leaves one runtime its own default (every physical core)."""
    if settings.runtime_threads is not None:
        return settings.runtime_threads
    if settings.runtime_replicas == 1:
        return None
    return max(1, physical_cores() // settings.runtime_replicas)


def _runtime(settings: StackSettings, name: str, port: int, base_url: str, external: bool) -> Service:
    program = None
    if not external:
        environment = {"RUNTIME_MODELS_DIR": str(REPO_ROOT / "models")}
        threads = runtime_threads(settings)
        if threads is not None:
            environment["RUNTIME_THREADS"] = str(threads)
        program = Program(
            name,
            [str(VENV_BIN / "python"), "-m", "local_runtime", "--host", "127.0.0.1", "--port", str(port)],
            environment=environment,
        )
    return Service(
        name,
        port,
        base_url,
        lambda: http_ok(f"{base_url}/api/version"),
        program,
        "Ollama found at OLLAMA_BASE_URL, embedded runtime skipped" if external else "",
        stage=RUNTIME_STAGE,
    )


def runtimes(settings: StackSettings, external_ollama: bool) -> list[Service]:
    """`runtime` on OLLAMA_BASE_URL (or the Ollama already there), and with RUNTIME_REPLICAS=2 `runtime2` on
    RUNTIME2_PORT, always embedded."""
    services = [_runtime(settings, "runtime", settings.runtime_port, settings.ollama_base_url, external_ollama)]
    if settings.runtime_replicas == 2:
        services.append(_runtime(settings, "runtime2", settings.runtime2_port, settings.runtime2_base_url, False))
    return services


def proxy_config(settings: StackSettings) -> Path:
    """The LiteLLM config for the runtimes that run: with one, no deployment may point at a runtime that does not
    exist (LiteLLM would send an unset RUNTIME2_BASE_URL's share to its default, localhost:11434)."""
    return PROXY_CONFIG if settings.runtime_replicas == 1 else PROXY_CONFIG_TWO_RUNTIMES


def proxy_runtime_environment(settings: StackSettings) -> dict[str, str]:
    """The runtime addresses the proxy's config reads."""
    environment = {"OLLAMA_BASE_URL": settings.ollama_base_url}
    if settings.runtime_replicas == 2:
        environment["RUNTIME2_BASE_URL"] = settings.runtime2_base_url
    return environment
