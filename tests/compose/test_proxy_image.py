"""The proxy image's `pip install` line, run here in a fresh Python 3.11 venv exactly as litellm_hub/Dockerfile runs it.

The Dockerfile's COPY lines are replayed into a temporary /app, its RUN pip line is run with /app pointing there
(pip's cache kept: the Dockerfile's --no-cache-dir only keeps the image small), and the result is checked for what
the container relies on: the `litellm` entrypoint, the hub importable with its data files, the pinned versions.
Slow (two minutes or more): it resolves and installs LiteLLM's proxy from PyPI, so the install starts in the
background as soon as the session's tests are collected (`start_in_background`, called by tests/conftest.py).
"""

import atexit
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.config import REPO_ROOT
from procs import scaled

DOCKERFILE = REPO_ROOT / "litellm_hub" / "Dockerfile"
PYTHON = shutil.which("python3.11")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(PYTHON is None, reason="no python3.11 to make a venv like python:3.11-slim's"),
]


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0], line.split(None, 1)[1]) for line in lines]


@dataclass
class Build:
    """The venv the Dockerfile's pip line is installing into, and the process doing it."""

    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def venv(self) -> Path:
        return self.root / "venv"


_build: Build | None = None


def _replay_copies(app: Path) -> list[str]:
    """Replays the Dockerfile's COPY lines into `app`; returns its pip line's arguments, /app pointing there."""
    pip_lines = []
    for kind, args in _instructions():
        if kind == "WORKDIR":
            assert args == "/app"
        if kind == "COPY":
            source, target = args.split()  # relative to the build context (litellm_hub/) and to WORKDIR /app
            origin = REPO_ROOT / "litellm_hub" / source
            destination = app / source if target in ("./", ".") else app / target.removeprefix("./")
            if origin.is_dir():
                shutil.copytree(origin, destination, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(origin, destination)
        if kind == "RUN" and "pip install" in args:
            pip_lines.append(args)
    assert len(pip_lines) == 1, pip_lines
    argv = shlex.split(pip_lines[0])
    assert argv[:2] == ["pip", "install"], argv
    args = [arg for arg in argv[2:] if arg != "--no-cache-dir"]
    args = [str(app) if arg == "/app" else arg for arg in args]
    assert str(app) in args, "the pip line installs something other than the copied project"
    return args


def start_in_background() -> None:
    """Called by tests/conftest.py once the session's tests are collected: the install (two minutes or more,
    mostly waiting on PyPI) runs beside the tests before this module's, at low priority, instead of in
    front of this module's."""
    global _build
    if _build is not None or PYTHON is None:
        return
    root = Path(tempfile.mkdtemp(prefix="genailabs-proxy-image-"))
    app = root / "app"
    app.mkdir()
    args = _replay_copies(app)
    log = root / "pip.log"
    # No .pyc compilation: it is what installing LiteLLM spends most of its time on, and changes nothing installed.
    environment = {**os.environ, "PIP_NO_COMPILE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    script = 'venv="$1"; shift; "$0" -m venv "$venv" && exec "$venv/bin/pip" install --quiet "$@"'
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["nice", "-n", "10", "sh", "-c", script, PYTHON, str(root / "venv"), *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
    _build = Build(root, process, log)
    atexit.register(_discard, _build)


def _discard(build: Build) -> None:
    if build.process.poll() is None:  # the session ended before this module ran
        os.killpg(build.process.pid, signal.SIGKILL)
        build.process.wait()
    shutil.rmtree(build.root, ignore_errors=True)


@pytest.fixture(scope="module")
def image() -> Path:
    """A venv holding what the Dockerfile's pip line installs; the /app it was run from beside it."""
    start_in_background()  # already under way unless this module's tests were not collected at session start
    assert _build is not None
    try:
        returncode = _build.process.wait(timeout=scaled(840))
    except subprocess.TimeoutExpired:
        _discard(_build)
        pytest.fail(f"the pip line did not finish within {scaled(840):.0f}s")
    output = _build.log.read_text(errors="replace")
    assert returncode == 0, output[-6000:]
    return _build.venv


def test_pip_line_installs_a_consistent_environment(image: Path) -> None:
    result = subprocess.run([str(image / "bin" / "pip"), "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_entrypoint_is_installed(image: Path) -> None:
    entrypoint = next(args for kind, args in _instructions() if kind == "ENTRYPOINT")
    assert entrypoint == '["litellm"]'
    assert (image / "bin" / "litellm").is_file()


def test_pinned_dependencies_are_the_versions_installed(image: Path) -> None:
    """Native (.venv) and container run the same versions: every == pin of the package is what got installed."""
    project = tomllib.loads((REPO_ROOT / "litellm_hub" / "pyproject.toml").read_text())["project"]
    pins = dict(re.sub(r"\[.*\]", "", dep).split("==") for dep in project["dependencies"] if "==" in dep)
    assert "litellm" in pins
    script = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    result = subprocess.run(
        [str(image / "bin" / "python"), "-c", script, *pins], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == pins


def test_the_hub_is_importable_with_its_data_files(image: Path) -> None:
    """The package is installed, not mounted: every file of litellm_hub/hub (SQL migrations too) is in it."""
    script = (
        "import hub, hub.auth, hub.logger, hub.keys, hub.keystore, hub.config, hub.errors, pathlib;"
        "print(pathlib.Path(hub.__file__).parent)"
    )
    result = subprocess.run(
        [str(image / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        cwd=image.parent,
        env={"PATH": f"{image / 'bin'}:/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    installed = Path(result.stdout.strip())
    assert "site-packages" in installed.parts
    source = REPO_ROOT / "litellm_hub" / "hub"
    wanted = {p.relative_to(source) for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    missing = sorted(str(p) for p in wanted if not (installed / p).is_file())
    assert not missing, f"not installed with the package: {missing}"


def test_the_proxy_loads_with_the_baked_config(image: Path) -> None:
    """`litellm`'s server module imports (offline price map) and the config's hub callbacks resolve from /app."""
    script = (
        "import litellm.proxy.proxy_server;"
        "from litellm.proxy.types_utils.utils import get_instance_fn;"
        "import yaml, sys; config = yaml.safe_load(open(sys.argv[1]));"
        "get_instance_fn(config['general_settings']['custom_auth'], sys.argv[1]);"
        "get_instance_fn(config['litellm_settings']['callbacks'], sys.argv[1]); print('ok')"
    )
    result = subprocess.run(
        [str(image / "bin" / "python"), "-c", script, str(image.parent / "app" / "litellm_config.yaml")],
        capture_output=True,
        text=True,
        cwd=image.parent,
        env={
            "PATH": f"{image / 'bin'}:/usr/bin:/bin",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_MASTER_KEY": "sk-test",
            "HUB_DATABASE_URL": "postgresql://nobody:nothing@127.0.0.1:9/none",
        },
        timeout=300,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
