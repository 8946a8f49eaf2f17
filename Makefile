# GenAILabs: the whole stack natively on one machine. `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed
DEPS := scripts/setup.sh scripts/build_llama_server.sh scripts/convert_minilm.sh requirements-dev.txt local_runtime/pyproject.toml litellm_hub/pyproject.toml accounts/pyproject.toml \
        agent_host/pyproject.toml streamlit_service/pyproject.toml
PYTEST_ARGS ?=

.PHONY: help setup up down status logs lint test bench pull

help:
	@echo "make setup   create .venv and install everything (runs by itself when missing or stale)"
	@echo "make up      start Postgres, Redis, model runtimes, Chroma, the LiteLLM proxy (PROXY_REPLICAS of them behind"
	@echo "             HAProxy), RAG_WORKERS ingestion workers, the agent host (AGENT_HOST_REPLICAS of them behind"
	@echo "             HAProxy) and the UI in the background"
	@echo "make status  health of each service      make logs   follow the service logs"
	@echo "make down    stop what 'make up' started  make test   lint + the whole test suite"
	@echo "make bench   benchmarks against the running stack (make up first)"
	@echo "make pull MODEL=qwen2.5:0.5b   pull a model from Ollama's registry into the embedded runtime"

# Re-runs only when a dependency file is newer than the last successful install. `status` and `logs` only need
# a venv (order-only): looking at a running stack never reinstalls.
$(STAMP): $(DEPS)
	@scripts/setup.sh

setup: $(STAMP)

up: $(STAMP)
	@$(PY) -m devstack up

down:
	@if [ -x $(PY) ]; then $(PY) -m devstack down; else echo "stack is not running"; fi

status: | $(STAMP)
	@$(PY) -m devstack status

logs: | $(STAMP)
	@$(PY) -m devstack logs

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy devstack local_runtime/local_runtime litellm_hub/hub accounts/genailabs_accounts streamlit_service agent_host/agent_host

test: $(STAMP) lint
	$(PY) -m pytest $(PYTEST_ARGS)

pull: | $(STAMP)
	@test -n "$(MODEL)" || { echo "usage: make pull MODEL=qwen2.5:0.5b" >&2; exit 2; }
	@$(PY) -m local_runtime.pull "$(MODEL)"

bench: $(STAMP)
	@$(PY) -m devstack status >/dev/null || { echo "make bench: the stack is not up; run 'make up' first" >&2; exit 1; }
	$(PY) bench/runtime_bench.py
	$(PY) bench/proxy_bench.py
	$(PY) bench/usage_log_bench.py
	$(PY) bench/agent_host_bench.py
	$(PY) bench/embedding_bench.py
	$(PY) bench/rag_eval.py
	$(PY) bench/rag_bench.py
	$(PY) bench/mcp_bench.py
	$(PY) bench/agent_bench.py
	$(PY) bench/hardening_bench.py
	$(PY) bench/users_bench.py
	$(PY) bench/proxy_scale_bench.py
	$(PY) bench/pull_bench.py
	$(PY) bench/runtime_embed_bench.py
