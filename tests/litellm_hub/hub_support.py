"""Helpers for the hub tests: the key CLI as a subprocess, request-log queries, and private proxies."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from psycopg.rows import dict_row

from hub.records import UsageRow
from procs import MASTER_KEY, ManagedProcess, start_proxy

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_CONFIG = TESTS_DIR.parent / "litellm_hub" / "litellm_config.yaml"


SMOLLM = "smollm2:135m"


# The priced proxy (conftest.priced_proxy): a copy of the repo's config with a price on smollm2:135m, so a
# budget can run out, and a one-second key cache, so a revocation shows within a test.
CACHE_TTL = 1.0
INPUT_COST, OUTPUT_COST = 0.001, 0.002  # USD per token: one short chat costs a few cents


def chat_body(model: str = SMOLLM, max_tokens: int = 8, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": max_tokens, **extra}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def run_keys(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m hub.keys ...` as an administrator would run it."""
    environment = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "hub.keys", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_key(database_url: str, alias: str, *options: str) -> str:
    result = run_keys(database_url, "create", "--alias", alias, *options)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def log_rows(database_url: str, request_ids: list[str]) -> list[dict[str, Any]]:
    with psycopg.connect(database_url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute("SELECT * FROM hub_request_log WHERE request_id = ANY(%s)", (request_ids,))
        return cursor.fetchall()


def wait_for_rows(database_url: str, request_ids: list[str], timeout: float = 20.0) -> dict[str, dict[str, Any]]:
    """The log rows of these requests, once all of them are written (the logger flushes every second)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = {row["request_id"]: row for row in log_rows(database_url, request_ids)}
        if len(rows) == len(set(request_ids)) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def wait_for_status(
    client: httpx.Client,
    key: str,
    expected: int,
    body: dict[str, Any],
    timeout: float,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Repeats a chat until it answers `expected` (a cache TTL running out) or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.post("/v1/chat/completions", headers={**bearer(key), **(headers or {})}, json=body)
        if response.status_code == expected or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


@contextmanager
def extra_env(**env: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_hub_proxy(
    database_url: str, runtime_url: str, runtime2_url: str | None = None, config: Path | None = None, **env: str
) -> tuple[ManagedProcess, str]:
    """A private proxy with hub settings in its environment, kept across restarts."""
    with extra_env(**env):
        process, base_url = start_proxy(MASTER_KEY, database_url, runtime_url, runtime2_url, config=config)
    process.env.update(env)
    return process, base_url


def priced_config(directory: Path, input_cost: float, output_cost: float) -> Path:
    """The repo's config with a price on every smollm2 deployment, so budgets can run out."""
    config = yaml.safe_load(REPO_CONFIG.read_text())
    for deployment in config["model_list"]:
        if deployment["model_name"] == SMOLLM:
            deployment["litellm_params"]["input_cost_per_token"] = input_cost
            deployment["litellm_params"]["output_cost_per_token"] = output_cost
    path = directory / "litellm_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def usage_row(request_id: str = "r1", status: str = "success", second: int = 0, **fields: object) -> UsageRow:
    start = NOW + timedelta(seconds=second)
    values: dict[str, object] = {
        "request_id": request_id, "started_at": start, "ended_at": start + timedelta(seconds=1),
        "key_hash": "h", "key_alias": "team-a", "model_requested": None, "model_group": "smollm2:135m",
        "deployment": "ollama_chat/smollm2:135m", "deployment_id": "d1", "api_base": "http://x",
        "prompt_tokens": 3, "completion_tokens": 4, "cost": 0.0, "ttft_ms": None, "status": status,
        "http_status": 200 if status == "success" else 500, "error": None, "stream": False,
    }  # fmt: skip
    return UsageRow(**{**values, **fields})  # type: ignore[arg-type]
