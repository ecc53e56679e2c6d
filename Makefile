# The README's words. Every install lives outside the clone, keyed by what it was built from,
# so a warm machine (or CI on it) reuses it: ~/.cache/cmf-server/<name>-<hash>.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PORT ?= 8080
DATA_DIR ?=
CACHE ?= $(HOME)/.cache/cmf-server
UV_VERSION := 0.13.9
UV := $(CACHE)/uv-$(UV_VERSION)/bin/uv
LOCK_HASH := $(shell sha256sum uv.lock | cut -c1-12)
# The checkout's own path is in the key too: the venv holds editable installs of this tree, and
# a second clone syncing the same venv would point them at itself (tests here would then run
# that clone's code). A clone's venv is quick to make: uv links it from its cache.
CHECKOUT_HASH := $(shell printf '%s' "$(CURDIR)" | sha256sum | cut -c1-8)
VENV := $(CACHE)/venv-$(LOCK_HASH)-$(CHECKOUT_HASH)
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := python3.11
PY := $(VENV)/bin/python

.PHONY: venv-path help install ui run lint format test test-only services-up services-down bench clean-cache sdk-docs kustomize

help:
	@echo "make venv-path      print the path of this checkout's venv (its bin/ has pytest, cmf-server)"
	@echo "make run            start the embedded server on http://127.0.0.1:$(PORT) (PORT=, DATA_DIR=)"
	@echo "make ui             build the web UI (services/ui, needs Node.js >= 20.19 and npm)"
	@echo "make test           install what is missing, start the real services, lint, run every test"
	@echo "make lint           ruff + mypy"
	@echo "make services-up    start the real servers the tests use (services-down stops them)"
	@echo "make bench          run every benchmark in bench/ (BENCH=listings runs one)"
	@echo "make sdk-docs       the Python SDK's API reference, from its docstrings, in $(SDK_DOCS)/"

$(UV):
	python3 -m venv $(CACHE)/uv-$(UV_VERSION)
	$(CACHE)/uv-$(UV_VERSION)/bin/pip install --quiet uv==$(UV_VERSION)

venv-path:
	@echo $(VENV)

# kustomize, which tests/deploy renders deploy/k8s with: built from its Go module (the Go module
# proxy; `go` must be on PATH) into the cache once, then reused. Prints its path.
KUSTOMIZE_VERSION := v5.8.1
KUSTOMIZE := $(CACHE)/kustomize-$(KUSTOMIZE_VERSION)/kustomize
$(KUSTOMIZE):
	@mkdir -p $(CACHE) && tmp=$$(mktemp -d $(CACHE)/kustomize-build.XXXXXX) \
	  && GOBIN=$$tmp go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION) \
	  && mkdir -p $(dir $(KUSTOMIZE)) && mv -f $$tmp/kustomize $(KUSTOMIZE) && rm -rf $$tmp

kustomize: $(KUSTOMIZE)
	@echo $(KUSTOMIZE)

# Re-run every time: cheap when nothing changed, and it makes sure the workspace packages point
# at this checkout. Bytecode is compiled at install: the tests start hundreds of Python
# processes, and one that compiles its imports (where PYTHONDONTWRITEBYTECODE is set, every one
# does) starts about 2 s later.
install: $(UV)
	@$(UV) sync --frozen --all-packages --quiet --compile-bytecode

# The web UI is built when missing or stale (scripts/ui.sh); `make run` without Node skips it.
ui:
	@scripts/ui.sh build --required

run: install
	@scripts/ui.sh build
	$(VENV)/bin/cmf-server up --port $(PORT) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

# mypy checks the packages ([tool.mypy] in pyproject.toml), then the tests and the benchmarks in
# runs of their own: pytest imports a test folder's conftest.py and helpers as top-level modules,
# so two folders with a conftest.py cannot share one mypy run. Each word is one run.
# The SDK (libs/client) also runs on older Pythons than ours: checked as the oldest mypy knows
# (3.10; its 3.9 syntax is a test of libs/client/tests).
MYPY_RUNS := conftest.py,bench,scripts,libs/common/tests,services/gateway/tests,server/tests \
    services/metadata/tests services/lineage/tests services/artifacts/tests tests/integration \
    tests/deploy \
    tests/telemetry \
    libs/client/src,libs/client/tests,--python-version,3.10
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@set -e; for run in $(MYPY_RUNS); do echo "$(VENV)/bin/mypy $${run//,/ }"; $(VENV)/bin/mypy $${run//,/ }; done
	$(PY) scripts/check_dependencies.py
	$(PY) scripts/check_references.py

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

services-up:
	@scripts/services.sh up

services-down:
	@scripts/services.sh down

test:
	@scripts/test.sh

# The tests alone, for a developer whose services are up: make test-only ARGS="-k push"
# (`make test` adds -n 2, two xdist workers: ARGS="-n 2 ..." does the same here). The workspace's own
# modules get their bytecode written even where PYTHONDONTWRITEBYTECODE is set (see install).
test-only: install
	env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/pytest $(ARGS)

# Every benchmark that records its figures in bench/RESULTS.md, one after the other (hours on a
# 2-core machine); BENCH= picks some: make bench BENCH=listings ARGS="--requests 100 --no-write"
BENCHES := run listings api_v1 upstream_v1 lineage_queries cmfquery projection relay rebuild ui \
    explorer bigpush concurrent first_reads artifacts tokens gateway
BENCH ?= $(BENCHES)
bench: install services-up
	@set -e; for b in $(BENCH); do echo "== python -m bench.$$b $(ARGS)"; $(PY) -m bench.$$b $(ARGS); done

# The Python SDK's API reference (pdoc, from the docstrings of libs/client): open
# $(SDK_DOCS)/index.html.
SDK_DOCS ?= build/sdk-docs
sdk-docs: install
	$(VENV)/bin/pdoc --docformat restructuredtext --output-directory $(SDK_DOCS) \
	    cmf_server_client
	@echo "$(SDK_DOCS)/index.html"

clean-cache:
	rm -rf $(CACHE)
