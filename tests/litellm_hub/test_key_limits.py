"""Virtual keys made with the CLI, enforced by a private proxy: models, rate, budget, expiry, revocation.

The proxy runs a copy of the repo's config with a price on smollm2:135m, so a budget can run out,
and a one-second key cache, so a revocation shows within the test.
"""

import time
import uuid
from pathlib import Path

import httpx
from hub_support import (
    CACHE_TTL,
    INPUT_COST,
    OUTPUT_COST,
    REPO_CONFIG,
    SMOLLM,
    bearer,
    chat_body,
    create_key,
    priced_config,
    run_keys,
    wait_for_status,
)


def new_key(database_url: str, *options: str) -> tuple[str, str]:
    alias = f"limits-{uuid.uuid4().hex[:8]}"
    return alias, create_key(database_url, alias, *options)


def test_a_key_sees_and_uses_only_its_models(http: httpx.Client, database_url: str) -> None:
    alias, key = new_key(database_url, "--models", SMOLLM)
    listed = http.get("/v1/models", headers=bearer(key))
    assert [model["id"] for model in listed.json()["data"]] == [SMOLLM]
    assert http.post("/v1/chat/completions", headers=bearer(key), json=chat_body()).status_code == 200
    refused = http.post("/v1/chat/completions", headers=bearer(key), json=chat_body("phi:latest"))
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == f"API key '{alias}' may not use model 'phi:latest'; allowed: {SMOLLM}"


def test_a_key_cannot_reach_another_model_through_client_fallbacks(http: httpx.Client, database_url: str) -> None:
    _, key = new_key(database_url, "--models", SMOLLM)
    body = chat_body(fallbacks=["phi:latest"])
    assert http.post("/v1/chat/completions", headers=bearer(key), json=body).status_code == 403


def test_a_key_cannot_call_admin_routes(http: httpx.Client, database_url: str) -> None:
    _, key = new_key(database_url)
    response = http.post("/key/generate", headers=bearer(key), json={})
    assert response.status_code == 403
    assert "use the master key" in response.json()["error"]["message"]


def test_the_request_past_the_rpm_limit_gets_429(http: httpx.Client, database_url: str) -> None:
    _, key = new_key(database_url, "--rpm", "2")
    statuses = [
        http.post("/v1/chat/completions", headers=bearer(key), json=chat_body(max_tokens=2)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_a_spent_budget_refuses_further_requests_with_a_clear_error(http: httpx.Client, database_url: str) -> None:
    alias, key = new_key(database_url, "--max-budget", "0.01")
    first = http.post("/v1/chat/completions", headers=bearer(key), json=chat_body())
    assert first.status_code == 200, first.text
    assert float(first.headers["x-litellm-response-cost"]) > 0.01  # the priced config applies
    refused = wait_for_status(http, key, 400, chat_body(), timeout=10)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["type"] == "budget_exceeded"
    assert error["message"].startswith(f"budget exceeded for API key '{alias}': spent $0.")
    assert error["message"].endswith("of $0.010000")


def test_an_expired_key_is_refused(http: httpx.Client, database_url: str) -> None:
    alias, key = new_key(database_url, "--expires-in", "3s")
    assert http.post("/v1/chat/completions", headers=bearer(key), json=chat_body(max_tokens=2)).status_code == 200
    refused = wait_for_status(http, key, 401, chat_body(max_tokens=2), timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"].startswith(f"API key '{alias}' expired at ")


def test_a_revoked_key_is_refused_within_the_cache_ttl(http: httpx.Client, database_url: str) -> None:
    alias, key = new_key(database_url)
    assert http.post("/v1/chat/completions", headers=bearer(key), json=chat_body(max_tokens=2)).status_code == 200
    assert run_keys(database_url, "revoke", alias).returncode == 0
    revoked_at = time.monotonic()
    refused = wait_for_status(http, key, 401, chat_body(max_tokens=2), timeout=CACHE_TTL + 10)
    assert refused.status_code == 401
    assert time.monotonic() - revoked_at < CACHE_TTL + 5
    assert f"API key '{alias}' was revoked" in refused.json()["error"]["message"]


def test_the_priced_config_is_a_copy_with_only_prices_added(tmp_path: Path) -> None:
    config = priced_config(tmp_path, INPUT_COST, OUTPUT_COST).read_text()
    deployments = REPO_CONFIG.read_text().count("model: ollama_chat/smollm2:135m")
    assert deployments >= 1 and config.count("input_cost_per_token") == deployments  # every smollm2 deployment
    assert "hub.auth.user_api_key_auth" in config
