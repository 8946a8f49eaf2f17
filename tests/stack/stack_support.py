"""What the `make up` tests share: a stack's environment on free ports, `make` and `devstack up` runs, a chat."""

import os
import subprocess
from pathlib import Path

import httpx

from devstack.config import REPO_ROOT
from devstack.probe import free_port
from procs import scaled


def stack_environment(stack_dir: Path, master_key: str, **settings: str) -> dict[str, str]:
    """A stack of its own under `stack_dir`, every port free, nothing from the developer's shell that would
    point it elsewhere; `settings` add or override."""
    env = {
        **os.environ,
        "STACK_DIR": str(stack_dir),
        "POSTGRES_PORT": str(free_port()),
        "OLLAMA_BASE_URL": f"http://localhost:{free_port()}",
        "RUNTIME2_PORT": str(free_port()),
        "LITELLM_PORT": str(free_port()),
        "LITELLM_MASTER_KEY": master_key,
        "UI_PORT": str(free_port()),
        "AGENT_HOST_PORT": str(free_port()),
        "REDIS_PORT": str(free_port()),
        "PROXY_REPLICAS": "1",
        **settings,
    }
    for name in ("MAKEFLAGS", "DATABASE_URL", "REDIS_URL"):
        if name not in settings:
            env.pop(name, None)
    return env


def make(target: str, env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=scaled(timeout),
    )  # fmt: skip


def devstack_up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m devstack up` straight (no make): for the refusals that come before anything starts."""
    return subprocess.run(
        [str(REPO_ROOT / ".venv/bin/python"), "-m", "devstack", "up"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=scaled(60),
    )  # fmt: skip


def chat_status(client: httpx.Client, url: str, key: str) -> int:
    """One short chat's HTTP status; 0 when no answer came at all."""
    try:
        return client.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        ).status_code
    except httpx.HTTPError:
        return 0
