# Everything a fresh machine needs is installed from here: Python packages into .venv,
# MinIO and Helm built from their official Go sources into .tools/bin (cached).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := $(CURDIR)/.tools/bin
MINIO := $(TOOLS)/minio
HELM := $(TOOLS)/helm
HELM_VERSION := v3.22.0
# MinIO's official source install; see docs/decisions.md if @latest ever stops building.
MINIO_VERSION := latest
DEMO_STORE ?= $(CURDIR)/demo-store
DEMO_START ?= 2025-01-06
DEMO_END ?= 2025-01-12
export PATH := $(TOOLS):$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test lint fmt unit bench render chromium tools clean image cluster-up deploy ui

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(MINIO):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) GOFLAGS=-buildvcs=false go install github.com/minio/minio@$(MINIO_VERSION)

$(HELM):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) GOFLAGS=-buildvcs=false go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

tools: $(MINIO) $(HELM)

setup: $(VENV)/.installed

demo: setup
	$(PY) -m workflows.cli demo --store file://$(DEMO_STORE) --start $(DEMO_START) --end $(DEMO_END)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup tools lint
	PIPELINE_MINIO_BIN=$(MINIO) PIPELINE_HELM_BIN=$(HELM) $(PY) -m pytest -q

unit: setup
	$(PY) -m pytest -q -m "not minio" tests/unit

render: setup
	$(PY) -m workflows.cli render

bench: setup tools
	PIPELINE_MINIO_BIN=$(MINIO) $(PY) -m workflows.bench --out docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(DEMO_STORE)
