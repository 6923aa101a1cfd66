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

.PHONY: setup demo test lint fmt unit bench render tools chromium clean image cluster-up deploy ui secrets

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

tools: $(MINIO) $(HELM) chromium

# Debian's chromium renders the HTML report in a test (headless).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

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

# Prefect is a benchmark baseline only: it gets its own environment.
.venv-bench/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -e . 'prefect>=3,<4' 'fastapi<0.120'  # prefect 3.8 breaks on newer FastAPI
	touch $@

bench: setup tools .venv-bench/.installed
	PIPELINE_MINIO_BIN=$(MINIO) $(PY) -m workflows.bench --out docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(DEMO_STORE)

# ---- cluster bring-up (a user's machine with internet; see docs/runbooks/cluster.md) ----
NAMESPACE ?= projections
IMAGE ?= projections-step:latest
K3S_KUBECONFIG ?= /etc/rancher/k3s/k3s.yaml
KUBECTL ?= sudo k3s kubectl

cluster-up:
	curl -sfL https://get.k3s.io | sh -s - --write-kubeconfig-mode 644
	$(KUBECTL) apply -f k8s/base/namespace.yaml
	$(KUBECTL) apply -f k8s/base/argo-helmchart.yaml
	$(KUBECTL) -n kube-system wait --for=condition=complete job/helm-install-argo-workflows --timeout=600s
	$(MAKE) secrets
	$(KUBECTL) apply -f k8s/base/minio.yaml
	$(KUBECTL) -n $(NAMESPACE) rollout status statefulset/minio --timeout=300s

secrets:
	@if ! $(KUBECTL) -n $(NAMESPACE) get secret projections-minio >/dev/null 2>&1; then \
	  $(KUBECTL) -n $(NAMESPACE) create secret generic projections-minio \
	    --from-literal=accesskey=projections \
	    --from-literal=secretkey="$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"; \
	fi

image:
	docker build -f images/step/Dockerfile --build-arg GIT_SHA=$$(git rev-parse HEAD) -t $(IMAGE) .
	docker save $(IMAGE) | sudo k3s ctr images import -

deploy: setup
	$(PY) -m workflows.cli render --check
	$(KUBECTL) apply -f k8s/base/namespace.yaml -f k8s/base/rbac.yaml -f k8s/base/minio.yaml -f k8s/base/artifact-repositories.yaml
	$(KUBECTL) apply -f k8s/generated/

ui:
	@echo "Argo UI: http://localhost:2746 (Ctrl-C to stop)"
	$(KUBECTL) -n argo port-forward svc/argo-workflows-server 2746:2746
