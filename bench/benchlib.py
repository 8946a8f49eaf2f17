"""What every benchmark prints the same way: the machine it ran on, and percentiles."""

import os
import platform
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    with Path("/proc/cpuinfo").open() as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile, `share` in [0, 1]."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
