"""The compose files, validated statically: no Docker engine runs on these machines."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from devstack.config import REPO_ROOT

COMPOSE_FILES = {
    REPO_ROOT / "docker-compose.yml": REPO_ROOT / ".env.example",
    REPO_ROOT / "litellm_hub" / "docker-compose.yml": REPO_ROOT / "litellm_hub" / ".env.example",
}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


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


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_compose_file_is_valid_with_its_env_example(compose: Path) -> None:
    result = _config(compose, COMPOSE_FILES[compose])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_compose_file_refuses_to_start_without_required_variables(compose: Path) -> None:
    result = _config(compose, None)
    assert result.returncode != 0
    assert "set " in result.stderr and ".env" in result.stderr


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_variable_in_compose_file_is_in_its_env_example(compose: Path) -> None:
    defined = _env_names(COMPOSE_FILES[compose])
    text = compose.read_text()
    required = {m.group(1) for m in VARIABLE.finditer(text) if ":?" in m.group(0) or "-" not in m.group(0)}
    assert required <= defined, f"not in {COMPOSE_FILES[compose].name}: {sorted(required - defined)}"


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_mounted_file_and_build_context_exists(compose: Path) -> None:
    spec = yaml.safe_load(compose.read_text())
    for name, service in spec["services"].items():
        build = service.get("build")
        if build:
            context = compose.parent / (build if isinstance(build, str) else build["context"])
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: no {dockerfile} in {context}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (compose.parent / source).exists(), f"{name}: mounts missing {source}"


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_long_running_services_have_healthchecks_and_wait_for_healthy_dependencies(compose: Path) -> None:
    spec = yaml.safe_load(compose.read_text())
    for name, service in spec["services"].items():
        if service.get("restart") == "no":
            continue  # one-shot jobs finish instead of staying healthy
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition["condition"] in ("service_healthy", "service_completed_successfully"), (name, dependency)


def _published(compose: Path, **env: str) -> dict[str, list[str]]:
    result = _config(compose, COMPOSE_FILES[compose], **env)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    return {name: [str(port) for port in service.get("ports", [])] for name, service in services.items()}


def test_root_compose_publishes_the_designed_ports_on_loopback_only() -> None:
    published = _published(REPO_ROOT / "docker-compose.yml")
    assert published["postgres"] == ["127.0.0.1:5433:5432/tcp"]
    assert published["litellm"] == ["127.0.0.1:4100:4100/tcp"]
    assert published["ollama"] == ["127.0.0.1:11434:11434/tcp"]
    assert published["agent-host"] == ["127.0.0.1:8000:8000/tcp"]
    assert published["ui"] == ["127.0.0.1:8501:8501/tcp"]


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_port_is_published_on_bind_address_and_the_services_know_it(compose: Path) -> None:
    for address in ("127.0.0.1", "0.0.0.0"):
        env = {} if address == "127.0.0.1" else {"BIND_ADDRESS": address}
        ports = [port for ports in _published(compose, **env).values() for port in ports]
        assert ports and all(port.startswith(f"{address}:") for port in ports), ports
    spec = yaml.safe_load(compose.read_text())
    for name, service in spec["services"].items():
        if service.get("ports") and service.get("build"):  # our images: each refuses example secrets when exposed
            assert service["environment"]["PUBLISHED_ADDRESS"] == "${BIND_ADDRESS:-127.0.0.1}", name


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_long_running_service_restarts_unless_stopped(compose: Path) -> None:
    spec = yaml.safe_load(compose.read_text())
    for name, service in spec["services"].items():
        one_shot = "pull" in name or name.endswith("-init")  # jobs that run once and exit
        assert service.get("restart") == ("no" if one_shot else "unless-stopped"), name


def test_proxy_container_loads_the_repo_config_and_hub_plugin() -> None:
    spec = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    litellm = spec["services"]["litellm"]
    assert "./litellm_hub/litellm_config.yaml:/app/litellm_config.yaml:ro" in litellm["volumes"]
    assert "./litellm_hub/hub:/app/hub:ro" in litellm["volumes"]
    config = yaml.safe_load((REPO_ROOT / "litellm_hub" / "litellm_config.yaml").read_text())
    assert config["general_settings"]["custom_auth"] == "hub.auth.user_api_key_auth"
    pulled = spec["services"]["ollama-pull"]["command"][0]
    for entry in config["model_list"]:
        model = entry["litellm_params"]["model"].split("/", 1)[1]
        assert f"ollama pull {model}" in pulled, f"{model} is routed but never pulled"
