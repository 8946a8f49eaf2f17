"""Rendering deploy/k8s and reading what it rendered: shared by the tests in tests/k8s."""

import importlib.util
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from devstack.config import REPO_ROOT

K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("single", "scaled")
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
KUBERNETES_VERSION = "1.37.0"
WORKLOADS = ("Deployment", "StatefulSet", "Job")

Doc = dict[str, Any]


def render(path: Path) -> list[Doc]:
    """`kubectl kustomize` of one kustomization directory, as objects."""
    # These machines' images carry kubectl (1.32, kustomize 5.5); Debian's kubernetes-client (1.20) is too old.
    assert Path(KUBECTL).exists(), f"kubectl not found (looked for {KUBECTL}): install kubectl 1.27 or newer"
    result = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr  # deprecated fields, say
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def named(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    return (doc for doc in docs if doc["kind"] in WORKLOADS)


def pod(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def container(doc: Doc) -> Doc:
    containers = pod(doc)["containers"]
    assert len(containers) == 1, doc["metadata"]["name"]
    first: Doc = containers[0]
    return first


def env(doc: Doc, docs: list[Doc]) -> dict[str, str]:
    """The container's plain environment: its ConfigMaps (envFrom) and its literal values."""
    values: dict[str, str] = {}
    maps = named(docs, "ConfigMap")
    for source in container(doc).get("envFrom", []):
        values |= maps[source["configMapRef"]["name"]]["data"]
    values |= {e["name"]: e["value"] for e in container(doc).get("env", []) if "value" in e}
    return values


def port_number(doc: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container(doc)["ports"] if p["name"] == port)


def compose_services() -> dict[str, Doc]:
    services: dict[str, Doc] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    return services


def load_keys_init() -> ModuleType:
    path = REPO_ROOT / "deploy" / "compose" / "service_keys.py"
    spec = importlib.util.spec_from_file_location("service_keys", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
