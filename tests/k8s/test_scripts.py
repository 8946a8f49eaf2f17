"""The shell a container runs and deploy/k8s/service-keys.sh: parsed, their programs found in the images, and run
here against this machine's redis-server, a recording kubectl and a fake ollama.
"""

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from compose.test_images import PYTHON_SLIM, UPSTREAM, shell_programs
from manifest_support import (
    K8S,
    Doc,
    container,
    env,
    load_keys_init,
    named,
    workloads,
)


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
