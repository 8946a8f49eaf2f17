"""The compose files, validated statically: no Docker engine runs on these machines.

`docker-compose config` (Debian's compose 1.29) renders every variant; the rest reads the YAML.
"""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from devstack.config import REPO_ROOT

ROOT_COMPOSE = REPO_ROOT / "docker-compose.yml"
HUB_COMPOSE = REPO_ROOT / "litellm_hub" / "docker-compose.yml"
COMPOSE_FILES = {
    ROOT_COMPOSE: REPO_ROOT / ".env.example",
    HUB_COMPOSE: REPO_ROOT / "litellm_hub" / ".env.example",
}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")
KEYS_DIR = "/run/genailabs/keys"


def _env_names(env_file: Path) -> set[str]:
    lines = env_file.read_text().splitlines()
    return {line.split("=", 1)[0].strip() for line in lines if "=" in line and not line.startswith("#")}


def _config(compose: Path, env_file: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    argv = ["docker-compose", "-f", str(compose)]
    if env_file is not None:
        argv[1:1] = ["--env-file", str(env_file)]
    return subprocess.run(
        [*argv, "config"], capture_output=True, text=True, cwd=compose.parent, env={"PATH": "/usr/bin:/bin", **env}
    )


def _rendered(compose: Path, **env: str) -> dict[str, Any]:
    result = _config(compose, COMPOSE_FILES[compose], **env)
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = yaml.safe_load(result.stdout)["services"]
    return services


def _spec(compose: Path) -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(compose.read_text())["services"]
    return services


def _ids(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
def test_compose_file_is_valid_with_its_env_example(compose: Path) -> None:
    result = _config(compose, COMPOSE_FILES[compose])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("replicas", ["1", "3", "8"])
def test_root_compose_runs_proxy_replicas_proxies(replicas: str) -> None:
    assert _rendered(ROOT_COMPOSE)["litellm"]["deploy"]["replicas"] == 2  # the default
    assert _rendered(ROOT_COMPOSE, PROXY_REPLICAS=replicas)["litellm"]["deploy"]["replicas"] == int(replicas)


@pytest.mark.parametrize(
    ("variable", "service"), [("AGENT_HOST_REPLICAS", "agent-host"), ("RAG_WORKERS", "rag-worker")]
)
def test_root_compose_runs_as_many_hosts_and_workers_as_asked(variable: str, service: str) -> None:
    assert _rendered(ROOT_COMPOSE)[service]["deploy"]["replicas"] == 1  # the default
    assert _rendered(ROOT_COMPOSE, **{variable: "3"})[service]["deploy"]["replicas"] == 3
    assert "container_name" not in _spec(ROOT_COMPOSE)[service]  # replicas cannot share one


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
def test_compose_file_refuses_to_start_without_required_variables(compose: Path) -> None:
    result = _config(compose, None)
    assert result.returncode != 0
    assert "set " in result.stderr and ".env" in result.stderr


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
def test_every_variable_in_compose_file_is_in_its_env_example(compose: Path) -> None:
    defined = _env_names(COMPOSE_FILES[compose])
    text = compose.read_text()
    required = {m.group(1) for m in VARIABLE.finditer(text) if ":?" in m.group(0) or "-" not in m.group(0)}
    assert required <= defined, f"not in {COMPOSE_FILES[compose].name}: {sorted(required - defined)}"


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
def test_every_mounted_file_and_build_context_exists(compose: Path) -> None:
    for name, service in _spec(compose).items():
        build = service.get("build")
        if build:
            context = compose.parent / (build if isinstance(build, str) else build["context"])
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: no {dockerfile} in {context}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (compose.parent / source).exists(), f"{name}: mounts missing {source}"


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
def test_long_running_services_have_healthchecks_and_wait_for_healthy_dependencies(compose: Path) -> None:
    spec = _spec(compose)
    for name, service in spec.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            wanted = "service_completed_successfully" if spec[dependency].get("restart") == "no" else "service_healthy"
            assert condition["condition"] == wanted, (name, dependency)
        if service.get("restart") != "no":  # one-shot jobs finish instead of staying healthy
            assert "healthcheck" in service, f"{name} has no healthcheck"


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
def test_healthchecks_ask_for_readiness_where_a_service_has_it(compose: Path) -> None:
    readiness = {"litellm": "/health/readiness", "agent-host": "/health/ready", "ui": "/_stcore/health"}
    readiness["rag-worker"] = "127.0.0.1:8090/health/ready"
    for name, service in _spec(compose).items():
        if name in readiness:
            assert readiness[name] in " ".join(service["healthcheck"]["test"]), name


def _published(compose: Path, **env: str) -> dict[str, list[str]]:
    return {name: [str(port) for port in s.get("ports", [])] for name, s in _rendered(compose, **env).items()}


def test_root_compose_publishes_the_designed_ports_on_loopback_only() -> None:
    published = _published(ROOT_COMPOSE)
    assert published["postgres"] == ["127.0.0.1:5433:5432/tcp"]
    # The proxies and the agent hosts are reached through it only.
    assert published["balancer"] == ["127.0.0.1:4100:4100/tcp", "127.0.0.1:8000:8000/tcp"]
    assert published["ollama"] == ["127.0.0.1:11434:11434/tcp"]
    assert published["ui"] == ["127.0.0.1:8501:8501/tcp"]
    for internal in ("litellm", "agent-host", "rag-worker", "redis", "chroma"):
        assert published[internal] == [], internal


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "192.0.2.7"])
def test_every_port_is_published_on_bind_address_and_the_services_know_it(compose: Path, address: str) -> None:
    env = {} if address == "127.0.0.1" else {"BIND_ADDRESS": address}
    services = _rendered(compose, **env)
    # Phase 1's Redis is published for the proxy on the host's network only: on loopback, whatever BIND_ADDRESS.
    loopback_only = {"redis"} if compose == HUB_COMPOSE else set()
    ports = [str(port) for name, s in services.items() if name not in loopback_only for port in s.get("ports", [])]
    assert ports and all(port.startswith(f"{address}:") for port in ports), ports
    for name in loopback_only:
        assert all(str(port).startswith("127.0.0.1:") for port in services[name]["ports"]), name
    for name, service in services.items():
        if service.get("network_mode") == "host":  # listens on the host itself: on BIND_ADDRESS only
            command = service["command"]
            assert command[command.index("--host") + 1] == address, name
        if service.get("build") and (service.get("ports") or service.get("network_mode") == "host"):
            # our images refuse an .env.example secret where they are exposed
            assert service["environment"]["PUBLISHED_ADDRESS"] == address, name
    if compose == ROOT_COMPOSE:  # the proxies and the hosts are exposed through the balancer
        assert services["litellm"]["environment"]["PUBLISHED_ADDRESS"] == address
        assert services["agent-host"]["environment"]["PUBLISHED_ADDRESS"] == address


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
def test_every_long_running_service_restarts_unless_stopped(compose: Path) -> None:
    for name, service in _spec(compose).items():
        one_shot = "pull" in name or name.endswith("-init")  # jobs that run once and exit
        assert service.get("restart") == ("no" if one_shot else "unless-stopped"), name


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=_ids)
def test_every_image_is_pinned_to_a_release(compose: Path) -> None:
    for name, service in _spec(compose).items():
        if "image" in service:
            tag = service["image"].partition(":")[2]
            assert re.match(r"^\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$", tag), f"{name}: {service['image']} is not pinned"


def test_chroma_server_is_the_official_image_at_the_client_version() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "agent_host" / "pyproject.toml").read_text())
    pins = [dep for dep in pyproject["project"]["dependencies"] if dep.startswith("chromadb==")]
    assert len(pins) == 1
    chroma = _spec(ROOT_COMPOSE)["chroma"]
    assert chroma["image"] == f"chromadb/chroma:{pins[0].split('==')[1]}"
    assert "build" not in chroma
    assert "chromadata:/data" in chroma["volumes"]  # the image's /config.yaml: persist_path "/data"


def test_proxies_share_redis_and_are_reached_through_the_balancer() -> None:
    services = _rendered(ROOT_COMPOSE)
    litellm = services["litellm"]
    assert litellm["environment"]["REDIS_URL"] == "redis://:change-me-redis-password@redis:6379/0"
    assert litellm["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "container_name" not in litellm  # replicas cannot share one
    for client in ("agent-host", "ui"):
        assert services[client]["environment"]["LITELLM_BASE_URL"] == "http://balancer:4100/v1", client
        assert services[client]["depends_on"]["balancer"]["condition"] == "service_healthy", client
    assert services["balancer"]["depends_on"]["litellm"]["condition"] == "service_healthy"
    assert "DATABASE_URL" not in litellm["environment"]  # LiteLLM would start its own Prisma layer


def test_balancer_config_finds_every_replica_through_docker_dns_and_checks_readiness() -> None:
    config = (REPO_ROOT / "deploy" / "compose" / "haproxy.cfg").read_text()
    assert "nameserver dns1 127.0.0.11:53" in config  # Docker's embedded DNS
    template = re.search(r"server-template \S+ 1-(\d+) (\S+):(\d+)", config)
    assert template is not None
    assert int(template.group(1)) == 8  # PROXY_REPLICAS' most (the native stack's limit too)
    assert template.group(2) == "litellm" and template.group(3) == "4100"  # the service name and its port
    assert "option httpchk GET /health/readiness" in config
    assert "check resolvers docker" in config and "init-addr none" in config  # starts before the proxies resolve
    assert "bind :4100" in config
    assert "monitor-uri /ready" in config and "bind :8404" in config  # the balancer's own healthcheck


def test_balancer_config_puts_every_agent_host_in_rotation_while_it_is_ready() -> None:
    config = (REPO_ROOT / "deploy" / "compose" / "haproxy.cfg").read_text()
    backend = config.split("backend agent-host", 1)[1]
    assert "bind :8000" in config and "default_backend agent-host" in config
    assert "server-template host 1-8 agent-host:8000" in backend  # AGENT_HOST_REPLICAS' most, as for proxies
    assert "option httpchk GET /health/ready" in backend and "init-addr none" in backend
    # A write a host received may have changed something: only a read, or a failed connection, goes to another host.
    assert re.search(r"^\s*retry-on conn-failure empty-response response-timeout$", backend, re.M)
    assert re.search(r"^\s*http-request disable-l7-retry unless METH_GET$", backend, re.M)
    assert "timeout tunnel" in backend  # /ws/chat


def test_ingestion_workers_run_the_hosts_image_and_settings_and_the_host_leaves_ingestion_to_them() -> None:
    services = _rendered(ROOT_COMPOSE)
    host, worker = services["agent-host"], services["rag-worker"]
    spec = _spec(ROOT_COMPOSE)
    assert spec["rag-worker"]["build"] == spec["agent-host"]["build"]
    assert worker["command"] == ["python", "-m", "agent_host.worker"]
    assert host["environment"]["RAG_INLINE_WORKER"] == worker["environment"]["RAG_INLINE_WORKER"] == "false"
    assert worker["environment"]["RAG_WORKER_HOST"] == "0.0.0.0"  # its healthcheck reaches it in the container
    for name in ("DATABASE_URL", "CHROMA_URL"):
        assert worker["environment"][name] == host["environment"][name], name
    assert worker["environment"]["CHROMA_URL"] == "http://chroma:8000"
    # It calls no model and serves no person: no keys, no proxy.
    assert not {"AGENT_HOST_API_KEY", "AGENT_HOST_PROXY_KEY_FILE", "LITELLM_BASE_URL"} & set(worker["environment"])
    assert not [volume for volume in worker["volumes"] if volume.startswith("servicekeys:")]
    assert "keys-init" not in worker["depends_on"]
    for dependency in ("postgres", "chroma"):
        assert worker["depends_on"][dependency]["condition"] == "service_healthy", dependency
    assert "agentdata:/data:rw" in worker["volumes"]  # the ONNX export of the embedding model, made once


@pytest.mark.skipif(shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists(), reason="no haproxy")
def test_balancer_config_is_valid_haproxy(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    result = subprocess.run(
        [haproxy, "-c", "-f", str(REPO_ROOT / "deploy" / "compose" / "haproxy.cfg")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_redis_keeps_its_password_out_of_command_lines() -> None:
    redis = _rendered(ROOT_COMPOSE)["redis"]
    script = " ".join(redis["command"])
    assert "change-me-redis-password" not in script and "$$REDIS_PASSWORD" in script
    assert "--requirepass" not in script
    assert redis["environment"]["REDISCLI_AUTH"] == redis["environment"]["REDIS_PASSWORD"]  # for the healthcheck


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")
def test_redis_config_written_by_the_compose_command_is_accepted_and_needs_the_password(tmp_path: Path) -> None:
    """The command's config (without the image's user switch) run by redis-server here; the healthcheck with it."""
    from devstack.probe import free_port

    script = _rendered(ROOT_COMPOSE)["redis"]["command"][2].replace("$$", "$")
    script = script.replace("/tmp/redis.conf", str(tmp_path / "redis.conf")).split(" && chown")[0]
    env = {"PATH": "/usr/bin:/bin", "REDIS_PASSWORD": "pw-123", "REDIS_MAXMEMORY": "64mb"}
    subprocess.run(["sh", "-c", script], check=True, env=env)
    assert (tmp_path / "redis.conf").stat().st_mode & 0o077 == 0
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", str(tmp_path / "redis.conf"), "--port", str(port), "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        healthcheck = _rendered(ROOT_COMPOSE)["redis"]["healthcheck"]["test"][1].replace(
            "redis-cli", f"redis-cli -p {port}"
        )
        answers: list[int] = []
        for _ in range(50):
            answers = [
                subprocess.run(["sh", "-c", healthcheck], env={**env, "REDISCLI_AUTH": auth}).returncode
                for auth in ("pw-123", "wrong")
            ]
            if answers[0] == 0:
                break
            subprocess.run(["sleep", "0.1"])
        assert answers == [0, 1]  # healthy with the password only
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_model_pulls_never_block_the_stack() -> None:
    spec = _spec(ROOT_COMPOSE)
    pull = spec["ollama-pull"]
    for name, service in spec.items():
        assert "ollama-pull" not in (service.get("depends_on") or {}), f"{name} waits for the model pull"
    script = pull["command"][0]
    assert script.rstrip().endswith("exit 0")  # a failed pull fails nothing
    assert 'ollama show "$$model"' in script  # only what is missing is pulled
    config = yaml.safe_load((REPO_ROOT / "litellm_hub" / "litellm_config.yaml").read_text())
    pulled = pull["environment"]["OLLAMA_MODELS_TO_PULL"].split(":-", 1)[1].rstrip("}").split()
    for entry in config["model_list"]:
        model = entry["litellm_params"]["model"].split("/", 1)[1]
        assert model in pulled, f"{model} is routed but never pulled"
    assert pulled[0] == "smollm2:135m"  # the fallback first
    assert spec["ollama"]["image"] == pull["image"]


def test_keys_init_hands_each_service_its_own_key_file(keys_init: ModuleType) -> None:
    spec = _rendered(ROOT_COMPOSE)
    init = spec["keys-init"]
    assert init["entrypoint"] == ["python", "/opt/genailabs/service_keys.py"] and init["command"] == [KEYS_DIR]
    assert f"servicekeys:{KEYS_DIR}:rw" in init["volumes"]
    files = {key.alias: f"{KEYS_DIR}/{key.file}" for key in keys_init.service_keys()}
    host, ui = spec["agent-host"], spec["ui"]
    assert host["environment"]["AGENT_HOST_PROXY_KEY_FILE"] == files["agent-host"]
    assert ui["environment"]["LITELLM_API_KEY_FILE"] == files["chat-ui"]
    assert ui["environment"]["UI_COOKIE_SECRET_FILE"] == f"{KEYS_DIR}/{keys_init.COOKIE_SECRET_FILE}"
    for client in (host, ui):
        assert f"servicekeys:{KEYS_DIR}:ro" in client["volumes"]
        assert client["depends_on"]["keys-init"]["condition"] == "service_completed_successfully"
    assert "AGENT_HOST_PROXY_KEY" not in host["environment"] and "LITELLM_API_KEY" not in ui["environment"]
    assert "litellm" not in (spec["keys-init"].get("depends_on") or {})  # it writes to PostgreSQL, not the proxy


def test_key_files_belong_to_the_users_the_images_run_as(keys_init: ModuleType) -> None:
    def uid(dockerfile: str, user: str) -> int:
        match = re.search(rf"useradd .*--uid (\d+) {user}\b", (REPO_ROOT / dockerfile).read_text())
        assert match is not None, dockerfile
        return int(match.group(1))

    assert uid("agent_host/Dockerfile", "agent") == keys_init.AGENT_HOST_UID
    assert uid("streamlit_service/Dockerfile", "ui") == keys_init.UI_UID


def test_env_example_holds_no_key_an_operator_must_copy() -> None:
    names = _env_names(REPO_ROOT / ".env.example")
    assert "AGENT_HOST_PROXY_KEY" not in names  # keys-init makes it
    assert "LITELLM_API_KEY" not in names  # the UI's is a service key of its own, not the master key
    assert "UI_COOKIE_SECRET" not in names
    assert "AGENT_HOST_URL" not in names  # the UI always uses the agent host
    assert _rendered(ROOT_COMPOSE)["ui"]["environment"]["AGENT_HOST_URL"] == "http://balancer:8000"


def test_agent_host_keeps_what_it_writes_in_its_volume() -> None:
    host = _rendered(ROOT_COMPOSE)["agent-host"]
    assert "agentdata:/data:rw" in host["volumes"]
    assert host["environment"]["MCP_RUNTIME_SERVERS_FILE"].startswith("/data/")
    dockerfile = (REPO_ROOT / "agent_host" / "Dockerfile").read_text()
    assert re.search(r"install -d -o agent .*/data\b", dockerfile)  # the volume inherits the owner
    assert dockerfile.index("install -d -o agent") < dockerfile.index("USER agent") < dockerfile.index("VOLUME /data")


def test_hub_compose_is_the_seeds_phase_one_on_its_own() -> None:
    services = _rendered(HUB_COMPOSE)
    assert set(services) == {"postgres", "redis", "litellm"}  # the proxy keeps its limits and cache in Redis
    assert services["litellm"]["container_name"] == "litellm_hub"  # `docker logs litellm_hub -f`
    assert services["postgres"]["container_name"] == "litellm_hub_postgres"
    assert services["litellm"]["environment"]["REDIS_URL"].endswith("@127.0.0.1:6380/0")  # redis's loopback port
    # Ollama and the embedded runtime listen on the host's 127.0.0.1: the proxy shares the host's network.
    litellm = services["litellm"]
    assert litellm["network_mode"] == "host"
    env_example = dict(
        line.split("=", 1)
        for line in COMPOSE_FILES[HUB_COMPOSE].read_text().splitlines()
        if "=" in line and line[0] != "#"
    )
    assert litellm["environment"]["OLLAMA_BASE_URL"] == env_example["OLLAMA_BASE_URL"] == "http://localhost:11434"
    assert litellm["environment"]["RUNTIME2_BASE_URL"] == env_example["RUNTIME2_BASE_URL"]
    assert litellm["environment"]["HUB_DATABASE_URL"].endswith("@127.0.0.1:5433/litellm")  # the published port
    assert "host.docker.internal" not in HUB_COMPOSE.read_text()


def test_proxy_image_is_built_from_the_project_package_with_the_config_it_routes_by() -> None:
    spec = _spec(ROOT_COMPOSE)
    assert spec["litellm"]["build"] == spec["keys-init"]["build"] == "./litellm_hub"
    assert _spec(HUB_COMPOSE)["litellm"]["build"] == "."
    assert "./litellm_hub/litellm_config.yaml:/app/litellm_config.yaml:ro" in spec["litellm"]["volumes"]
    config = yaml.safe_load((REPO_ROOT / "litellm_hub" / "litellm_config.yaml").read_text())
    assert config["general_settings"]["custom_auth"] == "hub.auth.user_api_key_auth"
    dockerfile = (REPO_ROOT / "litellm_hub" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert "COPY hub ./hub" in dockerfile and "COPY litellm_config.yaml ./" in dockerfile
    assert "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1" in dockerfile
    assert "LITELLM_LOCAL_MODEL_COST_MAP=True" in dockerfile
    assert re.search(r"^USER (?!root)\w+$", dockerfile, re.M)
    assert 'ENTRYPOINT ["litellm"]' in dockerfile
