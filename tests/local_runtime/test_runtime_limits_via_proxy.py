"""The schema bomb of issue 10 through the real LiteLLM proxy: a 400, and both runtimes still serving."""

import httpx
import pytest
from runtime_support import BOMB_SCHEMA, MODEL, assert_alive

from procs import MASTER_KEY

pytestmark = pytest.mark.timeout(300)


def test_schema_bomb_through_the_proxy_is_400_and_both_runtimes_live(proxy: str, runtimes: tuple[str, str]) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "bomb", "schema": BOMB_SCHEMA}},
    }
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    response = httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers, timeout=120)
    assert response.status_code == 400, response.text
    assert "maxLength" in response.text
    for runtime_url in runtimes:
        assert_alive(runtime_url)
