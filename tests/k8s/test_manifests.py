"""deploy/k8s, checked offline: both overlays render with `kubectl kustomize` and pass kubernetes-validate in strict
mode, and the policy scanner (checkov) reports nothing that docs/scaling.md does not explain. What the manifests
say is checked by the other modules here (workloads, network policies, the scripts they run).
"""

import json
import os
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from manifest_support import (
    K8S,
    KUBERNETES_VERSION,
    OVERLAYS,
    Doc,
    named,
    render,
)

from devstack.config import REPO_ROOT

# Installed by scripts/setup.sh in a venv of its own: in .venv it would downgrade packages the services use.
CHECKOV = REPO_ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"


# --- rendering and schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_everything_into_the_genailabs_namespace(overlay: str, rendered: dict[str, list[Doc]]) -> None:
    docs = rendered[overlay]
    kinds = {doc["kind"] for doc in docs}
    assert {"Namespace", "StatefulSet", "Deployment", "Job", "Service", "Ingress", "NetworkPolicy"} <= kinds
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "genailabs", (doc["kind"], doc["metadata"]["name"])
    labels = named(docs, "Namespace")["genailabs"]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# Each overlay against the newest schemas kubernetes-validate ships, and the scaled one (a superset of single's
# kinds and fields) against the oldest minor version still common on managed clusters.
@pytest.mark.parametrize(
    ("overlay", "version"), [("single", KUBERNETES_VERSION), ("scaled", KUBERNETES_VERSION), ("scaled", "1.29.0")]
)
def test_overlay_passes_kubernetes_validate_in_strict_mode(
    overlay: str, version: str, rendered: dict[str, list[Doc]]
) -> None:
    failures = []
    for doc in rendered[overlay]:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {str(exc).splitlines()[0]}")
    assert not failures, "\n".join(failures)


def test_strict_validation_rejects_a_field_kubernetes_does_not_know(rendered: dict[str, list[Doc]]) -> None:
    service = json.loads(json.dumps(named(rendered["single"], "Service")["ui"]))
    service["spec"]["sessionAffinityTimeout"] = 10800  # a plausible typo of sessionAffinityConfig
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


# --- the policy scanner ----------------------------------------------------------------------------------------


def accepted_findings() -> dict[str, tuple[set[str], str]]:
    """check id -> (resources as Kind/name, or {"*"}; the reason), from the table in docs/scaling.md."""
    text = (REPO_ROOT / "docs" / "scaling.md").read_text()
    section = text.split("## Accepted scanner findings", 1)[1].split("\n## ", 1)[0]
    accepted = {}
    for line in section.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"CKV2?_K8S_\d+", cells[0]):
            resources = {r.strip().strip("`") for r in cells[1].split(",")}
            assert cells[2], f"{cells[0]} has no reason"
            accepted[cells[0]] = (resources, cells[2])
    return accepted


@pytest.fixture(scope="module")
def checkov_failures(rendered: dict[str, list[Doc]], tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(check id, Kind/name) of every check that fails on either overlay."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup` (scripts/setup.sh installs it)"
    directory = tmp_path_factory.mktemp("rendered")
    for overlay, docs in rendered.items():
        (directory / f"{overlay}.yaml").write_text(yaml.safe_dump_all(docs))
    argv = [str(CHECKOV), "--directory", str(directory), "--framework", "kubernetes", "--skip-download"]
    result = subprocess.run([*argv, "--quiet", "--output", "json"], capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed
    reports = json.loads(result.stdout)
    failures = set()
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        assert report["summary"]["passed"] > 0
        for failed in report["results"]["failed_checks"]:
            kind, _namespace, name = failed["resource"].split(".", 2)
            failures.add((failed["check_id"], f"{kind}/{name}"))
    return failures


def test_the_scanner_finds_nothing_that_docs_scaling_md_does_not_explain(
    checkov_failures: set[tuple[str, str]],
) -> None:
    accepted = accepted_findings()
    unexplained = sorted(
        f"{check} on {resource}"
        for check, resource in checkov_failures
        if check not in accepted or not ({"*", resource} & accepted[check][0])
    )
    assert not unexplained, "fix these, or explain them in docs/scaling.md's table:\n" + "\n".join(unexplained)


def test_every_accepted_finding_is_still_found(checkov_failures: set[tuple[str, str]]) -> None:
    """The table lists what the scanner reports today: a finding fixed leaves the table too."""
    for check, (resources, _reason) in accepted_findings().items():
        found = {resource for found_check, resource in checkov_failures if found_check == check}
        assert found, f"{check} is accepted in docs/scaling.md but no longer found"
        if "*" not in resources:
            assert resources <= found, f"{check}: no longer found on {sorted(resources - found)}"


# --- a PostgreSQL of your own ------------------------------------------------------------------------------------


def test_external_postgres_component_removes_only_the_database(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes relative paths only
                "resources": [os.path.relpath(K8S / "overlays" / "scaled", tmp_path)],
                "components": [os.path.relpath(K8S / "components" / "external-postgres", tmp_path)],
            }
        )
    )
    docs = render(tmp_path)
    assert "postgres" not in named(docs, "StatefulSet") and "postgres" not in named(docs, "Service")
    assert "postgres" not in named(docs, "NetworkPolicy")
    assert {"litellm", "agent-host", "rag-worker", "ui"} <= set(named(docs, "Deployment"))
