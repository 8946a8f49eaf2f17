#!/usr/bin/env bash
# Builds llama.cpp's own server, the runtime's runner, into .venv/llama.cpp/bin/llama-server.
# The source is the llama.cpp tree the project pins: vendor/llama.cpp in the llama-cpp-python sdist from PyPI
# (MIT, checked against its sha256). Only the `llama-server` target is built: no tests, examples, web UI or TLS,
# and nothing is fetched at configure or build time. Skips everything when .venv/llama.cpp/.installed holds the
# pinned version and the binary runs; otherwise builds in a temporary dir under .venv, removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_CPP_COMMIT=0c1e570 # the llama.cpp commit that sdist vendors (ggml 0.25.3)
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
PINNED="llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
PREFIX=.venv/llama.cpp
BIN=$PREFIX/bin/llama-server
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3

say() { printf '\033[1m[llama-server]\033[0m %s\n' "$*"; }
die() { printf '[llama-server] error: %s\n' "$*" >&2; exit 1; }

installed() { [ "$(cat "$PREFIX/.installed" 2>/dev/null)" = "$PINNED" ] && "$BIN" --version >/dev/null 2>&1; }

case "${1:-}" in
  --check) installed; exit ;; # exit status only: 0 when the pinned build is installed and runs
  --pinned) echo "$LLAMA_CPP_COMMIT (vendored in $PINNED)"; exit 0 ;;
  "") ;;
  *) die "usage: $0 [--check | --pinned]" ;;
esac
installed && exit 0

mkdir -p "$PREFIX"
# One build at a time (two `make setup`s at once): the second waits, then finds the binary installed.
exec 9>"$PREFIX/.lock"
flock 9
installed && exit 0
rm -rf "$PREFIX"/tmp.* # left by a build that was killed outright

command -v cmake >/dev/null || die "cmake is missing (Debian: apt-get install cmake)"
command -v c++ >/dev/null || command -v g++ >/dev/null || die "a C++ compiler is missing (Debian: apt-get install g++)"

WORK=$(mktemp -d "$PREFIX/tmp.XXXXXX")
WORK=$(cd "$WORK" && pwd)
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LOG=$PREFIX/build.log
: >"$LOG"
rm -f "$PREFIX/.installed" # a failed build leaves no stamp behind
fail() {
  tail -n 30 "$LOG" >&2
  die "$1 (full log: $LOG)"
}

started=$(date +%s)
say "downloading the $PINNED sdist (llama.cpp source)"
"$PYTHON" -m pip --disable-pip-version-check download --no-deps --no-binary llama-cpp-python \
  "$PINNED" -d "$WORK" >>"$LOG" 2>&1 || fail "pip download $PINNED failed"
sdist=$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz
echo "$SDIST_SHA256  $sdist" | sha256sum --check --status || fail "$sdist does not match its pinned sha256"

# The tree and its git metadata (llama.cpp's build info reads the commit from it); not the 75 MB of test vocabularies.
top=llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION
tar -xzf "$sdist" -C "$WORK" --exclude="$top/vendor/llama.cpp/models" "$top/vendor/llama.cpp" "$top/.git" \
  || fail "unpacking $sdist failed"
rm -f "$sdist"
src=$WORK/$top/vendor/llama.cpp

# GGML_NATIVE (-march=native): the binary is built on the machine that runs it (each machine runs `make setup`
# for its own .venv), so it may use every instruction that CPU has.
# LLAMA_BUILD_TOOLS stays on: the server is one of the tools; only its target is built.
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
say "configuring"
cmake -S "$src" -B "$WORK/build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DGGML_CCACHE=OFF \
  -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_OPENSSL=OFF \
  -DLLAMA_LLGUIDANCE=OFF \
  -DLLAMA_ALL_WARNINGS=OFF \
  >>"$LOG" 2>&1 || fail "cmake could not configure llama.cpp"
say "compiling llama-server with $(nproc) jobs"
cmake --build "$WORK/build" --target llama-server -j"$(nproc)" >>"$LOG" 2>&1 \
  || fail "compiling llama-server failed"

mkdir -p "$PREFIX/bin"
install -m 755 "$WORK/build/bin/llama-server" "$BIN.new"
mv -f "$BIN.new" "$BIN"
"$BIN" --version >>"$LOG" 2>&1 || fail "the built llama-server does not run"
echo $(($(date +%s) - started)) >"$PREFIX/build-seconds"
echo "$PINNED" >"$PREFIX/.installed"
say "installed $BIN ($(cat "$PREFIX/build-seconds") s)"
