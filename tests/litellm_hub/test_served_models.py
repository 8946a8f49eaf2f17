"""/v1/models tells which models are served right now; LiteLLM's own health checks are not usage."""

import time

import httpx
from hub_support import MASTER_KEY, SMOLLM, bearer

from hub.logger import HEALTH_CHECK_ACCOUNT, usage_row
from procs import scaled


def test_models_lists_only_groups_a_backend_serves_once_health_checks_ran(client: httpx.Client) -> None:
    # The test runtimes have smollm2 and all-minilm built in; the seed's other Ollama models fail their health check.
    served = {SMOLLM, "all-minilm"}
    deadline = time.monotonic() + scaled(90)
    listed: set[str] = set()
    while time.monotonic() < deadline:
        listed = {model["id"] for model in client.get("/v1/models", headers=bearer(MASTER_KEY)).json()["data"]}
        if listed == served:
            break
        time.sleep(2)
    assert listed == served
    health = client.get("/health", headers=bearer(MASTER_KEY), timeout=120).json()
    unhealthy = {endpoint["model"] for endpoint in health["unhealthy_endpoints"]}
    assert "ollama_chat/qwen2.5:0.5b" in unhealthy


def test_health_check_calls_get_no_request_log_row() -> None:
    payload = {"status": "success", "request_tags": [HEALTH_CHECK_ACCOUNT], "metadata": {}}
    assert usage_row({"standard_logging_object": payload}) is None
    tagged_by_identity = {"status": "failure", "metadata": {"user_api_key_user_id": HEALTH_CHECK_ACCOUNT}}
    assert usage_row({"standard_logging_object": tagged_by_identity}) is None
