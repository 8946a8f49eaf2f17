"""deploy/k8s, checked offline: both overlays render with `kubectl kustomize`, pass kubernetes-validate in strict
mode, leave the policy scanner (checkov) nothing that docs/scaling.md does not explain, and say what the design
says (probes on the real endpoints, limits, non-root, who may reach whom, replicas, affinity).
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose.test_images import PYTHON_SLIM, UPSTREAM, shell_programs

from devstack.config import REPO_ROOT

K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("single", "scaled")
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
# Installed by scripts/setup.sh in a venv of its own: its dependencies clash with the services' pins.
CHECKOV = REPO_ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"
KUBERNETES_VERSION = "1.37.0"
WORKLOADS = ("Deployment", "StatefulSet", "Job")

Doc = dict[str, Any]


def render(path: Path) -> list[Doc]:
    result = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    return {overlay: render(K8S / "overlays" / overlay) for overlay in OVERLAYS}


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


def ids(value: object) -> str:
    return str(value)


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


# --- what every workload carries -------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_non_root_without_privileges(overlay: str, rendered: dict[str, list[Doc]]) -> None:
    for doc in workloads(rendered[overlay]):
        name, spec = doc["metadata"]["name"], pod(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] >= 10000, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, name
        context = container(doc)["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        assert context["readOnlyRootFilesystem"] is True, name
        # A read-only root needs somewhere to write temporary files.
        mounts = {mount["mountPath"] for mount in container(doc).get("volumeMounts", [])}
        assert "/tmp" in mounts, name
        for volume in spec.get("volumes", []):  # the kinds the restricted profile allows; scratch space bounded
            kind = next(key for key in volume if key != "name")
            assert kind in ("emptyDir", "secret", "configMap", "persistentVolumeClaim", "projected"), (name, kind)
            assert kind != "emptyDir" or "sizeLimit" in volume["emptyDir"], (name, volume["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str, rendered: dict[str, list[Doc]]) -> None:
    for doc in workloads(rendered[overlay]):
        resources = container(doc)["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), (doc["metadata"]["name"], bound)


# service -> (readiness path, liveness path, port): the endpoints each service really serves.
PROBES = {
    "litellm": ("/health/readiness", "/health/liveliness", 4100),
    "agent-host": ("/health/ready", "/health", 8000),
    "rag-worker": ("/health/ready", "/health", 8090),
    "ui": ("/_stcore/health", "/_stcore/health", 8501),
    "chroma": ("/api/v2/heartbeat", "/api/v2/heartbeat", 8000),
    "ollama": ("/api/version", "/api/version", 11434),
}
EXEC_PROBES = {"postgres": "pg_isready", "redis": "redis-cli ping"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_long_running_services_are_probed_on_their_real_endpoints(overlay: str, rendered: dict[str, list[Doc]]) -> None:
    services = [doc for doc in rendered[overlay] if doc["kind"] in ("Deployment", "StatefulSet")]
    assert {doc["metadata"]["name"] for doc in services} == set(PROBES) | set(EXEC_PROBES)
    for doc in services:
        name, main = doc["metadata"]["name"], container(doc)
        for probe in ("readinessProbe", "livenessProbe"):
            assert probe in main, (name, probe)
        if name in EXEC_PROBES:
            for probe in ("readinessProbe", "livenessProbe"):
                assert EXEC_PROBES[name] in " ".join(main[probe]["exec"]["command"]), (name, probe)
            continue
        ready, live, port = PROBES[name]
        assert main["readinessProbe"]["httpGet"]["path"] == ready, name
        assert main["livenessProbe"]["httpGet"]["path"] == live, name
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in main:
                assert port_number(doc, main[probe]["httpGet"]["port"]) == port, (name, probe)


def test_the_proxy_probes_as_litellms_helm_chart_does(rendered: dict[str, list[Doc]]) -> None:
    """BerriAI/litellm deploy/charts/litellm-helm: liveliness, readiness, and a startup probe of up to 5 minutes."""
    main = container(named(rendered["scaled"], "Deployment")["litellm"])
    startup = main["startupProbe"]
    assert startup["httpGet"]["path"] == "/health/readiness"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    assert "DATABASE_URL" not in {e["name"] for e in main["env"]}  # LiteLLM would start its own Prisma layer


# --- the scaled layout -----------------------------------------------------------------------------------------


def test_single_runs_one_of_everything(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["single"]
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            assert doc["spec"]["replicas"] == 1, doc["metadata"]["name"]
    assert not named(docs, "HorizontalPodAutoscaler")


def test_scaled_runs_two_proxies_two_hosts_two_uis_and_autoscaled_workers(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["scaled"]
    deployments = named(docs, "Deployment")
    for name in ("litellm", "agent-host", "ui"):
        assert deployments[name]["spec"]["replicas"] >= 2, name
        assert named(docs, "PodDisruptionBudget")[name]["spec"]["minAvailable"] == 1, name
    assert "replicas" not in deployments["rag-worker"]["spec"]  # the autoscaler owns the count
    hpa = named(docs, "HorizontalPodAutoscaler")["rag-worker"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rag-worker"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert "cpu" in container(deployments["rag-worker"])["resources"]["requests"]  # utilisation needs a request
    for name in ("postgres", "chroma", "ollama"):  # they do not scale out
        assert named(docs, "StatefulSet")[name]["spec"]["replicas"] == 1, name
    assert deployments["redis"]["spec"]["replicas"] == 1


def test_ui_sessions_stick_to_one_pod(rendered: dict[str, list[Doc]]) -> None:
    """Streamlit keeps a browser's session (and its uploads) in the process that opened it."""
    for overlay in OVERLAYS:
        docs = rendered[overlay]
        assert named(docs, "Service")["ui"]["spec"]["sessionAffinity"] == "ClientIP"
        ingress = named(docs, "Ingress")["ui"]
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
        assert annotations["nginx.ingress.kubernetes.io/affinity-mode"] == "persistent"
        assert annotations["nginx.ingress.kubernetes.io/session-cookie-name"]
        assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 300  # WebSocket streams
        assert ingress["spec"]["ingressClassName"] == "nginx"
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend["name"] == "ui"
    ui = named(rendered["scaled"], "Deployment")["ui"]
    assert pod(ui)["affinity"]["podAntiAffinity"]


# --- the agent host and its workers ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_run_the_hosts_image_and_settings_and_hosts_leave_ingestion_to_them(
    overlay: str, rendered: dict[str, list[Doc]]
) -> None:
    docs = rendered[overlay]
    host, worker = named(docs, "Deployment")["agent-host"], named(docs, "Deployment")["rag-worker"]
    assert container(worker)["command"] == ["python", "-m", "agent_host.worker"]
    assert (REPO_ROOT / "agent_host" / "agent_host" / "worker.py").is_file() or (
        REPO_ROOT / "agent_host" / "agent_host" / "worker" / "__main__.py"
    ).is_file()
    assert container(worker)["image"] == container(host)["image"]
    host_env, worker_env = env(host, docs), env(worker, docs)
    assert host_env["RAG_INLINE_WORKER"] == "false"
    assert worker_env["RAG_WORKER_HOST"] == "0.0.0.0" and worker_env["RAG_WORKER_PORT"] == "8090"
    chroma = named(docs, "Service")["chroma"]["spec"]["ports"][0]["port"]
    for settings in (host_env, worker_env):
        assert settings["CHROMA_URL"] == f"http://chroma:{chroma}"
        assert settings["LITELLM_BASE_URL"] == "http://litellm:4100/v1"
    # A worker calls no model and serves no person: the database URL is its one secret.
    assert [e["name"] for e in container(worker)["env"] if "valueFrom" in e] == ["DATABASE_URL"]
    assert not [volume for volume in pod(worker)["volumes"] if "secret" in volume]


def test_stateful_services_keep_their_data_on_claimed_volumes(rendered: dict[str, list[Doc]]) -> None:
    statefulsets = named(rendered["scaled"], "StatefulSet")
    for name, path in (("postgres", "/var/lib/postgresql/data"), ("chroma", "/data"), ("ollama", "/var/lib/ollama")):
        claims = {claim["metadata"]["name"] for claim in statefulsets[name]["spec"]["volumeClaimTemplates"]}
        mounts = {m["name"]: m["mountPath"] for m in container(statefulsets[name])["volumeMounts"]}
        assert any(mounts.get(claim) == path for claim in claims), name
    assert env(statefulsets["postgres"], rendered["scaled"])["PGDATA"].startswith("/var/lib/postgresql/data/")


# --- images, secrets, one-shot jobs ----------------------------------------------------------------------------


def compose_services() -> dict[str, Doc]:
    services: dict[str, Doc] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    return services


def test_images_are_pinned_as_compose_pins_them(rendered: dict[str, list[Doc]]) -> None:
    compose = compose_services()
    third_party = {"postgres": "postgres", "redis": "redis", "ollama": "ollama", "chroma": "chroma"}
    third_party |= {"ollama-pull": "ollama-pull"}
    for doc in workloads(rendered["scaled"]):
        name, image = doc["metadata"]["name"], container(doc)["image"]
        if name in third_party:  # release tags that never move: the cached image serves a restart
            assert image == compose[third_party[name]]["image"], name
            assert container(doc)["imagePullPolicy"] == "IfNotPresent", name
        else:  # the project's own, built from this repository: a rebuilt tag is pulled again
            assert re.fullmatch(r"genailabs/(litellm-hub|agent-host|ui):\d+\.\d+\.\d+", image), (name, image)
            assert container(doc)["imagePullPolicy"] == "Always", name


def load_keys_init() -> ModuleType:
    path = REPO_ROOT / "deploy" / "compose" / "service_keys.py"
    spec = importlib.util.spec_from_file_location("service_keys", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_secret_value_is_published_and_services_read_the_keys_keys_init_makes(
    rendered: dict[str, list[Doc]],
) -> None:
    docs = rendered["scaled"]
    assert not named(docs, "Secret")  # the operator creates them (docs/scaling.md, "Secrets")
    keys_init = load_keys_init()
    files = {key.alias: key.file for key in keys_init.service_keys()}
    script = (K8S / "service-keys.sh").read_text()
    for alias, file in files.items():
        assert f"new_key {alias} {file}" in script
    assert keys_init.COOKIE_SECRET_FILE in script
    deployments = named(docs, "Deployment")
    mounted: dict[str, set[str]] = {}
    for name in ("agent-host", "ui"):
        volume = next(v for v in pod(deployments[name])["volumes"] if v.get("secret", {}).get("secretName"))
        assert volume["secret"]["secretName"] == "genailabs-service-keys"
        mounted[name] = {item["path"] for item in volume["secret"]["items"]}
        for value in env(deployments[name], docs).values():
            if value.startswith("/run/genailabs/keys/"):
                assert value.removeprefix("/run/genailabs/keys/") in mounted[name], (name, value)
    assert mounted["ui"] == {files["chat-ui"], keys_init.COOKIE_SECRET_FILE}
    assert mounted["agent-host"] == {files["agent-host"]}


def test_postgres_creates_the_genailabs_database_as_compose_does(rendered: dict[str, list[Doc]]) -> None:
    maps = named(rendered["scaled"], "ConfigMap")
    initdb = next(m for name, m in maps.items() if name.startswith("postgres-initdb"))
    assert initdb["data"]["10-genailabs.sh"] == (REPO_ROOT / "litellm_hub" / "initdb" / "10-genailabs.sh").read_text()


def test_model_pull_never_blocks_the_stack_and_pulls_what_compose_pulls(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["scaled"]
    job = named(docs, "Job")["ollama-pull"]
    assert job["spec"]["backoffLimit"] == 0 and pod(job)["restartPolicy"] == "Never"
    assert "activeDeadlineSeconds" in job["spec"]
    script = container(job)["args"][0]
    assert script.rstrip().endswith("exit 0") and "exit 1" not in script
    compose_pull = compose_services()["ollama-pull"]["environment"]["OLLAMA_MODELS_TO_PULL"]
    assert env(job, docs)["OLLAMA_MODELS_TO_PULL"] == compose_pull.split(":-", 1)[1].rstrip("}")
    for doc in workloads(docs):  # nothing waits for it
        assert not pod(doc).get("initContainers"), doc["metadata"]["name"]


def shell_scripts(docs: list[Doc]) -> Iterator[tuple[str, str]]:
    for doc in workloads(docs):
        main = container(doc)
        argv = main.get("command", []) + main.get("args", [])
        if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"]):
            yield doc["metadata"]["name"], argv[2]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            command = main.get(probe, {}).get("exec", {}).get("command", [])
            if command[:2] == ["sh", "-c"]:
                yield f"{doc['metadata']['name']} {probe}", command[2]


def test_every_shell_script_parses_with_dash(rendered: dict[str, list[Doc]]) -> None:
    scripts = list(shell_scripts(rendered["scaled"]))
    assert len(scripts) >= 5
    for name, script in scripts:
        result = subprocess.run(["dash", "-n", "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {result.stderr}"
    result = subprocess.run(["bash", "-n", str(K8S / "service-keys.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def programs_run(doc: Doc) -> set[str]:
    """What a workload's container runs: its command (or the image's entrypoint with its args), probes, preStop."""
    main = container(doc)
    argv = [str(part) for part in main.get("command", [])]
    commands = [argv] if argv else []
    for hook in ("readinessProbe", "livenessProbe", "startupProbe"):
        commands.append(main.get(hook, {}).get("exec", {}).get("command", []))
    commands.append(main.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", []))
    programs: set[str] = set()
    for command in filter(None, commands):
        programs.add(command[0])
        if command[:2] in (["sh", "-c"], ["/bin/sh", "-c"]):
            script = command[2] if len(command) > 2 else main["args"][0]
            programs |= shell_programs(script)
    return programs


def test_every_program_a_workload_runs_is_in_its_image(rendered: dict[str, list[Doc]]) -> None:
    """As tests/compose checks compose's services: what each pinned image contains, read from its Dockerfile."""
    ours = {"genailabs/litellm-hub": "litellm", "genailabs/agent-host": "python", "genailabs/ui": "sh"}
    for doc in workloads(rendered["scaled"]):
        image = container(doc)["image"]
        contents = set(PYTHON_SLIM) | set(ours.values()) if image.split(":")[0] in ours else set(UPSTREAM[image])
        missing = programs_run(doc) - contents
        assert not missing, f"{doc['metadata']['name']} runs {sorted(missing)}, which {image} lacks"


def test_redis_password_never_reaches_an_environment_variable_or_argv(rendered: dict[str, list[Doc]]) -> None:
    redis = named(rendered["scaled"], "Deployment")["redis"]
    assert not [e for e in container(redis).get("env", []) if "valueFrom" in e]
    assert (
        "requirepass" in container(redis)["command"][2]
        and "/run/secrets/redis/password" in container(redis)["command"][2]
    )


# --- who may reach whom ----------------------------------------------------------------------------------------


def pod_labels(docs: list[Doc]) -> dict[str, dict[str, str]]:
    return {doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"] for doc in workloads(docs)}


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present, value = expression["key"] in labels, labels.get(expression["key"])
        operator, values = expression["operator"], expression.get("values", [])
        if (operator, present) in (("Exists", False), ("DoesNotExist", True)):
            return False
        if (operator == "In" and value not in values) or (operator == "NotIn" and value in values):
            return False
    return True


def admits(policies: list[Doc], source: dict[str, str], target: dict[str, str], port: int) -> bool:
    """NetworkPolicy's semantics for ingress within the namespace: denied once any policy selects the target,
    then allowed if one of those policies' rules matches the source pod and the port."""
    selecting = [
        p for p in policies if "Ingress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], target)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers = [peer for peer in rule.get("from", []) if "namespaceSelector" not in peer]  # same namespace
            if rule.get("from") and not any(selects(peer["podSelector"], source) for peer in peers):
                continue
            if not rule.get("ports") or any(p["port"] == port for p in rule["ports"]):
                return True
    return False


# server -> (port, the pods that may open connections to it)
REACHABLE_FROM = {
    "ollama": (11434, {"litellm", "ollama-pull"}),
    "postgres": (5432, {"litellm", "agent-host", "rag-worker", "ui", "accounts-init"}),
    "redis": (6379, {"litellm"}),
    "chroma": (8000, {"agent-host", "rag-worker"}),
    "litellm": (4100, {"agent-host", "ui"}),
    "agent-host": (8000, {"ui"}),
    "ui": (8501, set()),  # the ingress controller only, from its own namespace
    "rag-worker": (8090, set()),
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_each_server_be_reached_by_its_clients_only(
    overlay: str, rendered: dict[str, list[Doc]]
) -> None:
    docs = rendered[overlay]
    policies = list(named(docs, "NetworkPolicy").values())
    deny = named(docs, "NetworkPolicy")["default-deny-ingress"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    labels = pod_labels(docs)
    assert set(REACHABLE_FROM) <= set(labels)
    for server, (port, clients) in REACHABLE_FROM.items():
        allowed = {source for source in labels if admits(policies, labels[source], labels[server], port)}
        assert allowed == clients, (server, sorted(allowed))
    ui_rule = named(docs, "NetworkPolicy")["ui"]["spec"]["ingress"][0]["from"][0]
    assert ui_rule["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}


def test_the_policy_model_is_not_vacuous() -> None:
    """admits() as used above: a policy selecting the target denies by default; its rule lets one pod in."""
    policy = {
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 5432}]}],
        }
    }
    assert admits([policy], {"app": "api"}, {"app": "db"}, 5432)
    assert not admits([policy], {"app": "api"}, {"app": "db"}, 22)
    assert not admits([policy], {"app": "web"}, {"app": "db"}, 5432)
    assert admits([policy], {"app": "web"}, {"app": "other"}, 80)


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


# --- the scripts, run here -------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")
def test_redis_command_starts_a_server_that_the_probe_finds_healthy_with_the_password_only(
    rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    """The container's command and probe, run by this machine's redis-server with the Secret's file in tmp_path."""
    from devstack.probe import free_port

    redis = named(rendered["scaled"], "Deployment")["redis"]
    password = tmp_path / "password"
    password.write_text("pw-123")

    def local(script: str) -> str:
        return script.replace("/tmp/", f"{tmp_path}/").replace("/run/secrets/redis/password", str(password))

    port = free_port()
    script = local(container(redis)["command"][2]).replace("dir /data", f"dir {tmp_path}")
    assert script.rstrip().endswith("redis.conf")  # options after the config file override it
    script = script.rstrip() + f" --port {port} --save ''"
    server = subprocess.Popen(["sh", "-c", script], env={"PATH": "/usr/bin:/bin", "REDIS_MAXMEMORY": "64mb"})
    try:
        probe = local(container(redis)["readinessProbe"]["exec"]["command"][2]).replace(
            "redis-cli", f"redis-cli -p {port}"
        )
        healthy = False
        for _ in range(50):
            if subprocess.run(["sh", "-c", probe], env={"PATH": "/usr/bin:/bin"}).returncode == 0:
                healthy = True
                break
            subprocess.run(["sleep", "0.1"])
        assert healthy
        assert (tmp_path / "redis.conf").stat().st_mode & 0o077 == 0  # umask 077: the password's file is private
        password.write_text("wrong")
        assert subprocess.run(["sh", "-c", probe], env={"PATH": "/usr/bin:/bin"}).returncode != 0
    finally:
        server.terminate()
        server.wait(timeout=10)


FAKE_KUBECTL = r"""#!/bin/bash
# Records each call; plays a cluster where the Secret exists only if $STATE/secret does.
printf '%s\n' "$*" >> "$STATE/calls"
args=" $* "
case "$args" in
  *" get secret "*) [ -f "$STATE/secret" ] ;;
  *" rollout status "*) exit 0 ;;
  *" hub.keys revoke "*) exit 1 ;;
  *" hub.keys create "*) alias=$(sed -n 's/.*--alias \([^ ]*\).*/\1/p' <<< "$args"); echo "sk-made-for-$alias" ;;
  *" create secret generic "*)
    for arg in "$@"; do
      case "$arg" in
        --from-file=*) file=${arg#--from-file=}; stat -c '%a' "$file" >> "$STATE/modes";
          echo "  $(basename "$file"): $(cat "$file")" ;;
      esac
    done ;;
  *" apply -f - "*) cat > "$STATE/secret" ;;
  *" rollout restart "*) exit 0 ;;
  *) echo "unexpected kubectl call: $*" >&2; exit 3 ;;
esac
"""


def run_service_keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "KUBECTL": str(kubectl), "STATE": str(tmp_path), "TMPDIR": str(tmp_path)}
    return subprocess.run(
        ["bash", str(K8S / "service-keys.sh"), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_service_keys_script_stores_new_keys_in_the_secret_through_private_files_only(tmp_path: Path) -> None:
    keys_init = load_keys_init()
    result = run_service_keys(tmp_path)
    assert result.returncode == 0, result.stderr
    secret = (tmp_path / "secret").read_text()
    for key in keys_init.service_keys():
        assert f"{key.file}: sk-made-for-{key.alias}" in secret
    cookie = re.search(rf"{re.escape(keys_init.COOKIE_SECRET_FILE)}: (\S+)", secret)
    assert cookie is not None and len(cookie.group(1)) >= 40
    calls = (tmp_path / "calls").read_text()
    assert "sk-made-for" not in calls and cookie.group(1) not in calls  # never on a command line
    assert "sk-made-for" not in result.stdout + result.stderr  # nor printed
    assert set((tmp_path / "modes").read_text().split()) == {"600"}
    assert not [path for path in tmp_path.iterdir() if path.is_dir()]  # its temporary directory is gone
    assert "rollout restart" not in calls


def test_service_keys_script_keeps_an_existing_secret_and_rotates_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("existing")
    result = run_service_keys(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "kept" in result.stdout and (tmp_path / "secret").read_text() == "existing"
    assert "hub.keys" not in (tmp_path / "calls").read_text()
    result = run_service_keys(tmp_path, "--rotate")
    assert result.returncode == 0, result.stderr
    assert "sk-made-for-agent-host" in (tmp_path / "secret").read_text()
    calls = (tmp_path / "calls").read_text()
    assert "hub.keys revoke agent-host" in calls and "rollout restart deployment/agent-host deployment/ui" in calls


FAKE_OLLAMA = r"""#!/bin/sh
# `list` answers unless $STATE/down exists; `show` knows the models in $STATE/have; `pull` fails offline.
echo "$*" >> "$STATE/calls"
case "$1" in
  list) [ ! -f "$STATE/down" ] ;;
  show) grep -qx "$2" "$STATE/have" ;;
  pull) [ ! -f "$STATE/offline" ] ;;
  *) exit 3 ;;
esac
"""


@pytest.mark.parametrize("situation", ["online", "offline", "down"])
def test_model_pull_script_pulls_only_what_is_missing_and_always_exits_0(
    situation: str, rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    docs = rendered["scaled"]
    job = named(docs, "Job")["ollama-pull"]
    # Ollama that never answers is waited for 5 minutes in the cluster; a second here.
    script = container(job)["args"][0].replace("timeout 300 ", "timeout 1 ")
    assert script != container(job)["args"][0]
    (tmp_path / "ollama").write_text(FAKE_OLLAMA)
    (tmp_path / "ollama").chmod(0o755)
    (tmp_path / "have").write_text("smollm2:135m\n")
    if situation != "online":
        (tmp_path / situation).touch()
    models = env(job, docs)["OLLAMA_MODELS_TO_PULL"]
    result = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin", "STATE": str(tmp_path), "OLLAMA_MODELS_TO_PULL": models},
    )
    assert result.returncode == 0, result.stderr
    pulls = [line.split()[1] for line in (tmp_path / "calls").read_text().splitlines() if line.startswith("pull ")]
    if situation == "down":
        assert not pulls and "did not answer" in result.stdout
        return
    assert pulls == models.split()[1:]  # smollm2:135m is there; the others in the listed order
    assert "smollm2:135m is there" in result.stdout
    assert ("could not pull" in result.stdout) == (situation == "offline")
