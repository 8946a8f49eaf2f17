"""Every program a compose service runs (its command, entrypoint and healthcheck) exists in its image.

No Docker engine runs here, so what each pinned upstream image contains is read from the Dockerfile it is built
from: the table below cites the line for every program. The project's own images are read from their Dockerfiles
in this repository. A healthcheck calling a program its image lacks (curl in Chroma's image, python in Redis's)
would leave the service "unhealthy" forever and everything depending on it unstarted.
"""

import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.config import REPO_ROOT

# Programs every Debian/Ubuntu-based image has: its Essential packages (dash, bash, coreutils, grep, sed, ...).
DEBIAN_ESSENTIAL = {"sh": "dash (Essential)", "bash": "bash (Essential)", "grep": "grep (Essential)"}
COREUTILS = ("chown", "chmod", "cat", "head", "sleep", "env", "timeout")
DEBIAN_ESSENTIAL |= {name: "coreutils (Essential)" for name in COREUTILS}

# image -> {program: where the upstream Dockerfile provides it}
UPSTREAM: dict[str, dict[str, str]] = {
    "postgres:16.13-trixie": {
        # docker-library/postgres@6edb0a8 16/trixie/Dockerfile
        **DEBIAN_ESSENTIAL,  # line 7: FROM debian:trixie-slim
        "pg_isready": "line 90: ENV PATH $PATH:/usr/lib/postgresql/$PG_MAJOR/bin; line 158: postgresql-$PG_MAJOR",
        "psql": "line 90 (PATH) and line 158 (postgresql-16 depends on postgresql-client-16)",
        "postgres": 'line 172: postgres --version (smoke test); line 218: CMD ["postgres"]',
        "docker-entrypoint.sh": "line 189: COPY docker-entrypoint.sh ... /usr/local/bin/; line 191: ENTRYPOINT",
    },
    "redis:7.2.5-bookworm": {
        # redis/docker-library-redis@5f08363 7.2/debian/Dockerfile (the commit stackbrew tags 7.2.5-bookworm)
        **DEBIAN_ESSENTIAL,  # line 7: FROM debian:bookworm-slim
        "redis-server": "line 112: make -C /usr/src/redis install (to /usr/local/bin); line 150: CMD",
        "redis-cli": "line 112: make install; line 139: redis-cli --version (smoke test)",
        "docker-entrypoint.sh": 'line 147: ENTRYPOINT ["docker-entrypoint.sh"] (it steps down with gosu, line 57)',
    },
    "haproxy:3.0.24-alpine": {
        # docker-library/haproxy@b034a68 3.0/alpine/Dockerfile
        "sh": "line 7: FROM alpine:3.24 (busybox ash)",
        "wget": "line 7: FROM alpine:3.24 (busybox wget)",
        "haproxy": 'line 88: haproxy -v (smoke test); line 104: CMD ["haproxy", "-f", ...haproxy.cfg]',
        "docker-entrypoint.sh": 'line 97: ENTRYPOINT ["docker-entrypoint.sh"]',
    },
    "ollama/ollama:0.32.14": {
        # ollama/ollama@v0.32.14 (d67ad83) Dockerfile
        **DEBIAN_ESSENTIAL,  # line 295: FROM ubuntu:24.04
        "/bin/sh": "line 295: FROM ubuntu:24.04 (dash)",
        "ollama": 'line 310: COPY --from=image-archive /bin /usr/bin; line 318: ENTRYPOINT ["/bin/ollama"]',
    },
    "chromadb/chroma:1.5.9": {
        # chroma-core/chroma@1.5.9 (11f3c74) rust/Dockerfile, target `cli` (the one
        # .github/workflows/_build_release_container.yml lines 105-106 publish as chromadb/chroma:<version>).
        # No curl and no python: line 83 installs only dumb-init, libssl-dev and ca-certificates.
        **DEBIAN_ESSENTIAL,  # line 72: FROM debian:stable-slim AS runner
        # line 92: ENTRYPOINT ["dumb-init", "--", "chroma"]
        "dumb-init": "line 83: apt-get install -y dumb-init libssl-dev ca-certificates",
        "chroma": "line 88: COPY --from=builder /chroma/chroma /usr/local/bin/chroma",
    },
}
# python:3.11-slim (docker-library/python@4f07059 3.11/slim-trixie/Dockerfile): line 7 FROM debian:trixie-slim,
# lines 140-144 link python, pip and friends into /usr/local/bin; useradd comes with Debian's passwd (required).
PYTHON_SLIM = {**DEBIAN_ESSENTIAL, "python": "lines 140-144", "pip": "lines 140-144"}
# Console scripts the project's images get from the packages they install (checked against the installed
# distributions' entry points below).
CONSOLE_SCRIPTS = {"litellm": "litellm", "streamlit": "streamlit"}

SHELL_KEYWORDS = {"if", "then", "elif", "else", "fi", "for", "in", "do", "done", "!", "{", "}"}
SHELL_BUILTINS = {"echo", "printf", "umask", "exit", "read", "exec", "test", "[", "[[", ":", "cd", "true", "false"}
SEPARATORS = {"&&", "||", ";", "|", "(", ")", "\n"}
# Programs that run their first argument: the images' entrypoint scripts exec it (after stepping down from root).
WRAPPERS = {"docker-entrypoint.sh", "gosu", "dumb-init", "env"}


def shell_programs(script: str) -> set[str]:
    """The programs a shell script runs: the first word of each simple command (after `exec`), builtins aside."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    tokens = list(lexer)
    programs, at_start, skip_redirect_target, in_for = set(), True, False, False
    for token in tokens:
        if skip_redirect_target:
            skip_redirect_target = False
            continue
        if token in SEPARATORS:
            at_start, in_for = True, False
            continue
        if set(token) <= set("<>&") or re.fullmatch(r"\d*[<>]+&?", token):  # a redirection: its target follows
            skip_redirect_target = True
            continue
        if token == "for":
            in_for = True
        if in_for or not at_start:
            continue
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", token, re.S):  # VAR=value before the command
            continue
        if token in SHELL_KEYWORDS or token in SHELL_BUILTINS or re.fullmatch(r"\d+", token):
            at_start = token in SHELL_KEYWORDS or token == "exec"
            continue
        programs.add(token)
        at_start = token in WRAPPERS  # the wrapper runs the next word
    return programs


def test_shell_programs_reads_commands_the_way_sh_runs_them() -> None:
    assert shell_programs('pg_isready -h 127.0.0.1 -U "$X"') == {"pg_isready"}
    assert shell_programs("redis-cli ping | grep -q PONG") == {"redis-cli", "grep"}
    assert shell_programs("umask 077 && printf 'a %s' \"$P\" > /tmp/c && chown redis /tmp/c && exec e.sh x") == {
        "chown",
        "e.sh",
    }
    assert shell_programs("exec docker-entrypoint.sh redis-server /tmp/c") == {"docker-entrypoint.sh", "redis-server"}
    assert shell_programs('A="$(cat /run/p)" redis-cli ping | grep -q PONG') == {"redis-cli", "grep"}
    assert shell_programs("exec 3<>/dev/tcp/h/1 && printf 'x' >&3 && read -r s <&3 && [[ $s == *ok* ]]") == set()
    assert shell_programs('for m in $M; do if ollama show "$m"; then echo y; elif ollama pull x; then :; fi; done') >= {
        "ollama"
    }


def _argv(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def _argv_programs(argv: list[str]) -> set[str]:
    programs = {argv[0]}
    if argv[0] in ("sh", "/bin/sh", "bash") and argv[1:2] == ["-c"]:
        programs |= shell_programs(argv[2].replace("$$", "$"))  # compose's $$ is the shell's $
    return programs


def programs_of(service: dict[str, Any]) -> dict[str, set[str]]:
    """What a service runs, by purpose: its entrypoint and command, and its healthcheck.

    With only a command, the image's entrypoint runs it (docker-entrypoint.sh execs a command it does not know);
    a command of options only (`--config ...`) goes to the image's own entrypoint, which is not checked here.
    """
    used: dict[str, set[str]] = {}
    argv = _argv(service.get("entrypoint", [])) + _argv(service.get("command", []))
    if argv and not argv[0].startswith("-"):
        used["command"] = _argv_programs(argv)
    test = service.get("healthcheck", {}).get("test")
    if test:
        kind, *rest = test
        used["healthcheck"] = (
            {"sh"} | shell_programs(rest[0].replace("$$", "$")) if kind == "CMD-SHELL" else (_argv_programs(rest))
        )
    return used


COMPOSE_FILES = [REPO_ROOT / "docker-compose.yml", REPO_ROOT / "litellm_hub" / "docker-compose.yml"]
IMAGE_SERVICES = [
    (compose, name)
    for compose in COMPOSE_FILES
    for name, service in yaml.safe_load(compose.read_text())["services"].items()
    if "image" in service
]


@pytest.mark.parametrize(("compose", "name"), IMAGE_SERVICES, ids=[f"{c.parent.name}/{n}" for c, n in IMAGE_SERVICES])
def test_upstream_image_has_every_program_its_service_runs(compose: Path, name: str) -> None:
    service = yaml.safe_load(compose.read_text())["services"][name]
    contents = UPSTREAM.get(service["image"])
    assert contents is not None, f"{name}: {service['image']} is not in the table read from upstream Dockerfiles"
    for purpose, programs in programs_of(service).items():
        missing = programs - set(contents)
        assert not missing, f"{name}'s {purpose} runs {sorted(missing)}, which {service['image']} lacks"


def test_the_table_is_about_the_images_the_compose_files_pin() -> None:
    pinned = {yaml.safe_load(c.read_text())["services"][n]["image"] for c, n in IMAGE_SERVICES}
    assert pinned == set(UPSTREAM)


def test_chroma_healthcheck_uses_no_curl_or_python() -> None:
    chroma = yaml.safe_load(COMPOSE_FILES[0].read_text())["services"]["chroma"]
    assert programs_of(chroma)["healthcheck"] == {"bash"}
    assert "/api/v2/heartbeat" in chroma["healthcheck"]["test"][-1]


def _dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def _exec_form(arguments: str) -> list[str]:
    parsed = yaml.safe_load(arguments) if arguments.startswith("[") else ["sh", "-c", arguments]
    return [str(part) for part in parsed]


def pip_installs(dockerfile: Path) -> set[str]:
    """Distributions the Dockerfile's pip lines name, and those the repository's projects they install depend on
    (not with --no-deps). `.` and `/app` are the Dockerfile's own project (its WORKDIR), `/app/NAME` the NAME one."""
    names: set[str] = set()
    for kind, args in _dockerfile(dockerfile):
        if kind != "RUN" or "pip install" not in args:
            continue
        words = shlex.split(args.split("pip install", 1)[1].split("&&")[0])
        takes_value = False
        for word in words:
            if takes_value or word.startswith("-"):
                takes_value = word in ("--index-url", "--extra-index-url", "-i", "-c", "-r")
                continue
            if word in (".", "/app") or word.startswith("/app/"):
                project = dockerfile.parent if word in (".", "/app") else REPO_ROOT / word.removeprefix("/app/")
                if "--no-deps" not in words:
                    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
                    names |= {
                        re.split(r"[\[=<>~!; ]", dependency, maxsplit=1)[0].lower() for dependency in dependencies
                    }
            else:
                names.add(re.split(r"[\[=<>~!]", word, maxsplit=1)[0].lower())
    return names


def own_image(dockerfile: Path) -> tuple[dict[str, str], list[str], list[str], set[str]]:
    """(programs in the image, ENTRYPOINT, CMD, programs its HEALTHCHECK runs) read from one of our Dockerfiles."""
    instructions = _dockerfile(dockerfile)
    assert instructions[0] == ("FROM", "python:3.11-slim"), dockerfile
    programs = dict(PYTHON_SLIM)
    installed = pip_installs(dockerfile)
    for script, distribution in CONSOLE_SCRIPTS.items():
        if distribution in installed:
            programs[script] = f"console script of {distribution}"
    entrypoint = next((_exec_form(args) for kind, args in reversed(instructions) if kind == "ENTRYPOINT"), [])
    cmd = next((_exec_form(args) for kind, args in reversed(instructions) if kind == "CMD"), [])
    health = next((args for kind, args in instructions if kind == "HEALTHCHECK"), "")
    health_programs = shell_programs(health.split(" CMD ", 1)[1]) if " CMD " in health else set()
    return programs, entrypoint, cmd, health_programs


def test_pip_installs_reads_what_each_image_gets() -> None:
    assert {"litellm", "prisma", "psycopg", "redis"} <= pip_installs(REPO_ROOT / "litellm_hub" / "Dockerfile")
    ui = pip_installs(REPO_ROOT / "streamlit_service" / "Dockerfile")
    assert "streamlit" in ui and "litellm" not in ui  # the hub's key store comes without its dependencies
    assert {"torch", "litellm", "chromadb"} <= pip_installs(REPO_ROOT / "agent_host" / "Dockerfile")


OWN_IMAGES = {
    "litellm_hub/Dockerfile": "litellm",
    "agent_host/Dockerfile": "python",
    "streamlit_service/Dockerfile": "sh",
}


@pytest.mark.parametrize("path", OWN_IMAGES)
def test_own_image_runs_programs_it_installs(path: str) -> None:
    programs, entrypoint, cmd, health = own_image(REPO_ROOT / path)
    argv = entrypoint or cmd
    assert argv[0] == OWN_IMAGES[path] and argv[0] in programs, (path, argv)
    if argv[:2] == ["sh", "-c"]:
        assert shell_programs(argv[2]) <= set(programs), (path, shell_programs(argv[2]) - set(programs))
    assert health and health <= set(programs), (path, health)


def test_console_scripts_come_from_the_distributions_named() -> None:
    """`litellm` and `streamlit` are entry points of the pinned packages (installed in .venv at the same pins)."""
    from importlib.metadata import distribution

    for script, name in CONSOLE_SCRIPTS.items():
        scripts = {entry.name for entry in distribution(name).entry_points if entry.group == "console_scripts"}
        assert script in scripts, name


def test_services_built_from_our_images_run_what_those_images_have() -> None:
    spec = yaml.safe_load(COMPOSE_FILES[0].read_text())["services"]
    images = {"./litellm_hub": "litellm_hub/Dockerfile", "agent_host/Dockerfile": "agent_host/Dockerfile"}
    images["streamlit_service/Dockerfile"] = "streamlit_service/Dockerfile"
    for name, service in spec.items():
        build = service.get("build")
        if not build:
            continue
        dockerfile = images[build if isinstance(build, str) else build["dockerfile"]]
        programs = own_image(REPO_ROOT / dockerfile)[0]
        for purpose, used in programs_of(service).items():
            assert used <= set(programs), f"{name}'s {purpose} runs {sorted(used - set(programs))}"
        argv = _argv(service.get("entrypoint", [])) + _argv(service.get("command", []))
        if argv[:2] == ["python", "-m"]:  # a module the image installs: a package, or a module inside one
            path = argv[2].replace(".", "/")
            assert any(
                (REPO_ROOT / project / path).is_dir() or (REPO_ROOT / project / f"{path}.py").is_file()
                for project in ("accounts", "agent_host")
            ), argv[2]
        if argv[:1] == ["python"] and argv[1].startswith("/opt/genailabs/"):  # a script mounted beside it
            mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"] if v.startswith("./")}
            assert (REPO_ROOT / mounts[argv[1]]).is_file(), argv[1]


def _scripts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(shell, script) of each shell script a service runs; compose's $$ made the shell's $."""
    scripts = []
    argv = _argv(service.get("entrypoint", [])) + _argv(service.get("command", []))
    test = service.get("healthcheck", {}).get("test") or []
    if test[:1] == ["CMD-SHELL"]:
        scripts.append(("sh", test[1]))
    for candidate in (argv, test[1:]):
        if candidate[:1] and candidate[0] in ("sh", "/bin/sh", "bash") and candidate[1:2] == ["-c"]:
            scripts.append((Path(candidate[0]).name, candidate[2]))
    return [(shell, script.replace("$$", "$")) for shell, script in scripts]


@pytest.mark.parametrize("compose", COMPOSE_FILES, ids=lambda p: p.parent.name)
def test_every_shell_script_parses_in_its_shell(compose: Path) -> None:
    """`sh` is dash in the Debian and Ubuntu images and busybox ash in Alpine's: POSIX only, checked with dash."""
    checked = 0
    for name, service in yaml.safe_load(compose.read_text())["services"].items():
        for shell, script in _scripts(service):
            result = subprocess.run(
                ["dash" if shell == "sh" else shell, "-n", "-c", script], capture_output=True, text=True
            )
            assert result.returncode == 0, f"{name}: {result.stderr}"
            checked += 1
    assert checked
