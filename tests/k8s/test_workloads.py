"""What every workload in deploy/k8s carries: probes on the real endpoints, requests and limits, restricted pods,
the replicas and the autoscaler of each overlay, sticky UI sessions, workers beside the hosts, pinned images, no
secret values, and the one-shot jobs as compose runs them.
"""

import re

import pytest
from manifest_support import (
    K8S,
    OVERLAYS,
    Doc,
    compose_services,
    container,
    env,
    load_keys_init,
    named,
    pod,
    port_number,
    workloads,
)

from devstack.config import REPO_ROOT

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


def test_redis_password_never_reaches_an_environment_variable_or_argv(rendered: dict[str, list[Doc]]) -> None:
    redis = named(rendered["scaled"], "Deployment")["redis"]
    assert not [e for e in container(redis).get("env", []) if "valueFrom" in e]
    assert (
        "requirepass" in container(redis)["command"][2]
        and "/run/secrets/redis/password" in container(redis)["command"][2]
    )
