"""RUNTIME_REPLICAS: one runtime with the whole machine by default, a second one for failover with 2, and the
proxy config that routes to exactly the runtimes that run (config level: nothing is started)."""

import asyncio
import json
import os
from pathlib import Path

import pytest
from stack_support import devstack_up, stack_environment

from devstack import runtimes
from devstack import services as services_module
from devstack.config import StackSettings
from devstack.services import plan, supervised_programs
from devstack.supervisor import render_config

MASTER_KEY = "sk-master-Secret-4f1c9"


def _settings(stack_dir: Path, **update: object) -> StackSettings:
    keys = {"AGENT_HOST_PROXY_KEY": "sk-proxy-Secret-77aa", "AGENT_HOST_API_KEY": "sk-agent-Secret-88bb"}
    (stack_dir / "agent_host.keys").write_text(json.dumps(keys))
    settings = StackSettings(stack_dir=stack_dir, litellm_master_key=MASTER_KEY, database_url="")
    return settings.model_copy(update=update)


def _programs(settings: StackSettings) -> dict[str, str]:
    """Each [program:x] section of the supervisord config `up` would write, by name."""
    config = render_config(settings, supervised_programs(plan(settings, lambda name: True)))
    sections = [section for section in config.split("\n[") if section.startswith("program:")]
    return {section.split("]", 1)[0].removeprefix("program:"): section for section in sections}


def _command(section: str) -> list[str]:
    return next(line for line in section.splitlines() if line.startswith("command=")).split()


def _environment(section: str) -> dict[str, str]:
    line = next((line for line in section.splitlines() if line.startswith("environment=")), "environment=")
    pairs = [pair.split("=", 1) for pair in line.removeprefix("environment=").split('",') if pair]
    return {name: value.strip('"') for name, value in pairs}


def _deployments(config: Path, env: dict[str, str]) -> dict[str, str]:
    """The smollm2:135m group as LiteLLM itself reads the config (includes merged): deployment id -> address."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.proxy.proxy_server import ProxyConfig

    loaded = asyncio.run(ProxyConfig()._get_config_from_file(str(config)))
    ids = [deployment["model_info"]["id"] for deployment in loaded["model_list"]]
    assert len(ids) == len(set(ids)), ids  # the request log tells deployments apart by id
    return {
        deployment["model_info"]["id"]: env[deployment["litellm_params"]["api_base"].removeprefix("os.environ/")]
        for deployment in loaded["model_list"]
        if deployment["model_name"] == "smollm2:135m"
    }


def test_by_default_one_runtime_runs_with_the_runtimes_own_thread_count(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    programs = _programs(settings)
    assert "runtime" in programs and "runtime2" not in programs
    assert "RUNTIME_THREADS" not in _environment(programs["runtime"])  # local_runtime's default: every core
    proxy = _programs(settings)["proxy"]
    command, env = _command(proxy), _environment(proxy)
    config = Path(command[command.index("--config") + 1])
    assert config.name == "litellm_config.yaml" and "RUNTIME2_BASE_URL" not in env
    # No deployment points at a runtime that does not run, so nothing is routed to one.
    assert _deployments(config, env) == {"smollm2-135m-runtime1": settings.ollama_base_url}
    assert _environment(programs["ui"])["RUNTIME_URLS"] == settings.ollama_base_url


def test_runtime_replicas_2_runs_a_second_runtime_that_the_proxy_routes_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtimes, "physical_cores", lambda: 8)
    settings = _settings(tmp_path, runtime_replicas=2, runtime2_port=12435)
    programs = _programs(settings)
    assert "--port 12435" in " ".join(_command(programs["runtime2"]))
    for name in ("runtime", "runtime2"):  # half the cores each
        assert _environment(programs[name])["RUNTIME_THREADS"] == "4", programs[name]
    command, env = _command(programs["proxy"]), _environment(programs["proxy"])
    config = Path(command[command.index("--config") + 1])
    assert config.name == "litellm_config.runtime2.yaml"
    assert _deployments(config, env) == {
        "smollm2-135m-runtime1": settings.ollama_base_url,
        "smollm2-135m-runtime2": "http://localhost:12435",
    }
    assert _environment(programs["ui"])["RUNTIME_URLS"] == f"{settings.ollama_base_url},http://localhost:12435"
    services = {service.name: service for service in plan(settings, lambda name: True)}
    assert services["runtime2"].stage == services["runtime"].stage < services["proxy"].stage


def test_runtime_threads_given_reach_every_runtime_and_one_core_is_never_halved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for replicas in (1, 2):
        programs = _programs(_settings(tmp_path, runtime_replicas=replicas, runtime_threads=3))
        assert {_environment(programs[name])["RUNTIME_THREADS"] for name in programs if "runtime" in name} == {"3"}
    monkeypatch.setattr(runtimes, "physical_cores", lambda: 1)
    programs = _programs(_settings(tmp_path, runtime_replicas=2))
    assert _environment(programs["runtime2"])["RUNTIME_THREADS"] == "1"


def test_changing_runtime_replicas_changes_the_proxy_program_so_supervisord_restarts_it(tmp_path: Path) -> None:
    one = _programs(_settings(tmp_path))
    two = _programs(_settings(tmp_path, runtime_replicas=2))
    assert one["proxy"] != two["proxy"] and one["ui"] != two["ui"]


def test_an_embedded_second_runtime_runs_beside_an_ollama_found_at_ollama_base_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services_module, "ollama_version", lambda url: "0.12.0")
    for replicas, names in ((1, {"runtime"}), (2, {"runtime", "runtime2"})):
        settings = _settings(tmp_path, runtime_replicas=replicas)
        planned = plan(settings, lambda name: False)
        services = {service.name: service for service in planned if service.name.startswith("runtime")}
        assert set(services) == names and services["runtime"].program is None
        assert replicas == 1 or services["runtime2"].program is not None


@pytest.mark.parametrize("value", ["0", "3", "two"])
def test_a_runtime_replicas_other_than_1_or_2_is_refused_with_one_line(tmp_path: Path, value: str) -> None:
    result = devstack_up(stack_environment(tmp_path, RUNTIME_REPLICAS=value))
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert "RUNTIME_REPLICAS" in lines[0], lines[0]
    assert not (tmp_path / "supervisord.conf").exists()  # refused before anything started
