"""The whole chain with no network but loopback: run by test_offline.py under `unshare -n`."""

import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from procs import scaled, start_postgres, start_proxy, start_runtime

MASTER_KEY = "sk-offline-master-key"


def main() -> int:
    os.environ.pop("HF_HUB_OFFLINE", None)  # prove it, rather than ask for it
    postgres = start_postgres()
    runtime, runtime_url = start_runtime(Path(tempfile.mkdtemp()))
    proxy, proxy_url = start_proxy(MASTER_KEY, postgres.url("litellm"), runtime_url)
    try:
        reply = httpx.post(
            f"{proxy_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8},
            timeout=120,
        )
        reply.raise_for_status()
        print("reply:", reply.json()["choices"][0]["message"]["content"])
        # The hub creates its tables on its first write, so the table may not exist for a moment.
        deadline = time.monotonic() + scaled(20)
        while time.monotonic() < deadline:
            with psycopg.connect(postgres.url("litellm"), autocommit=True) as conn:
                try:
                    count = conn.execute("SELECT count(*) FROM hub_request_log").fetchone()
                except psycopg.errors.UndefinedTable:
                    count = (0,)
            if count and count[0] >= 1:
                print("logged rows:", count[0])
                return 0
            time.sleep(0.2)
        print("no request-log row was written", file=sys.stderr)
        return 1
    finally:
        for process in (proxy, runtime):
            process.stop()
        postgres.remove()


if __name__ == "__main__":
    sys.exit(main())
