"""Nothing at run time downloads anything: the chain answers with networking cut."""

import shutil
import subprocess
import sys

import pytest

from devstack.config import REPO_ROOT


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is not installed")
def test_chain_answers_and_logs_with_only_loopback() -> None:
    script = REPO_ROOT / "tests" / "stack" / "offline_chain.py"
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", f'ip link set lo up && exec "{sys.executable}" "{script}"'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        env={"PATH": "/usr/sbin:/usr/bin:/bin", "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'tests'}"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "logged rows:" in result.stdout
