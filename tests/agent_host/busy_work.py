"""Functions the tool tests run in worker processes: a module with no heavy imports, so workers start fast."""

import os
from pathlib import Path


def spin(pid_file: str) -> None:
    """CPU-bound forever: what a tool stuck in a computation looks like."""
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        pass


def die() -> None:
    os._exit(3)
