# Everything a fresh machine needs is installed from here: Python packages into .venv, at the
# exact versions in requirements.lock (`make lock` writes it; docs/decisions.md, D17); MinIO,
# Helm, kube-apiserver, kubectl and kustomize built from their Go modules into .tools/bin
# (cached); etcd and Chromium from Debian's packages.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := $(CURDIR)/.tools/bin
MINIO := $(TOOLS)/minio
HELM := $(TOOLS)/helm
HELM_VERSION := v3.22.0
# MinIO's release tags are not semver, so the Go module proxy serves its source only by commit:
# this is a fixed commit of github.com/minio/minio (docs/decisions.md), stamped with its date.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO_STAMP := -X github.com/minio/minio/cmd.Version=2026-02-12T20:18:48Z -X github.com/minio/minio/cmd.ReleaseTag=DEVELOPMENT.2026-02-12T20-18-48Z -X github.com/minio/minio/cmd.CommitID=7aac2a2c5b7c
DEMO_STORE ?= $(CURDIR)/demo-store
DEMO_START ?= 2025-01-06
DEMO_END ?= 2025-01-12
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PATH := $(TOOLS):$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup demo test lint fmt unit bench render tools chromium clean lock \
	cluster-up argo-install image deploy secrets ui

# The lock: every package .venv holds (runtime and the dev extra), exact versions, for Python
# $(LOCK_PYTHON); the step image installs the runtime-only subset. Both are resolved by uv from
# pyproject.toml; a re-lock keeps every pin it can, so it changes only what pyproject.toml forces.
# Upgrade deliberately: `make lock LOCK_ARGS=--upgrade` (all) or
# `make lock LOCK_ARGS='--upgrade-package pandas'` (one), then `make setup` and the tests.
LOCK := requirements.lock
STEPS_LOCK := requirements-steps.lock
LOCK_PYTHON := 3.11
LOCK_ARGS ?=
UV_VERSION := 0.13.8
UV := $(CURDIR)/.tools/uv/bin/uv
UV_COMPILE := $(UV) pip compile --quiet --universal --python-version $(LOCK_PYTHON)

# A lock change reinstalls: packages come from the lock alone (--no-deps), the project after
# them without resolving anything, and `pip check` fails if the lock is incomplete.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $@

$(UV):
	$(PYTHON) -m venv $(CURDIR)/.tools/uv
	$(CURDIR)/.tools/uv/bin/pip install --quiet uv==$(UV_VERSION)

lock: $(UV)
	$(UV_COMPILE) $(LOCK_ARGS) --extra dev -o $(LOCK) pyproject.toml
	$(UV_COMPILE) -c $(LOCK) -o $(STEPS_LOCK) pyproject.toml

$(MINIO):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) GOFLAGS=-buildvcs=false go install -ldflags "$(MINIO_STAMP)" github.com/minio/minio@$(MINIO_VERSION)

$(HELM):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) GOFLAGS=-buildvcs=false go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

include mk/kube.mk

# The same files by their paths relative to the repository, e.g. `make .tools/bin/minio`.
.tools/bin/minio: $(MINIO)
.tools/bin/helm: $(HELM)

tools: $(MINIO) $(HELM) kube-tools chromium

# Debian's chromium renders the HTML report in a test (headless).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

setup: $(VENV)/.installed

demo: setup
	$(PY) -m workflows.cli demo --store file://$(DEMO_STORE) --start $(DEMO_START) --end $(DEMO_END)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup tools lint
	PIPELINE_MINIO_BIN=$(MINIO) PIPELINE_HELM_BIN=$(HELM) PIPELINE_KUBE_APISERVER_BIN=$(KUBE_APISERVER) \
	PIPELINE_KUBECTL_BIN=$(KUBECTL_BIN) PIPELINE_KUSTOMIZE_BIN=$(KUSTOMIZE) PIPELINE_ETCD_BIN=$(ETCD_BIN) \
	$(PY) -m pytest -q

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
	PIPELINE_MINIO_BIN=$(MINIO) $(PY) -m benchmarks.run --out docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(DEMO_STORE)

# ---- the cluster path (docs/runbooks/cluster.md) ---------------------------------------------
# Works as root or not, on any k3s that KUBECONFIG points at (default: k3s's own kubeconfig).
NAMESPACE ?= projections
K3S_VERSION ?= v1.34.1+k3s1
ARGO_VERSION := v4.1.2
# online: Argo's official manifests from the tag; airgapped: a local copy (k8s/argo/airgapped).
ARGO_INSTALL ?= online
KUBECONFIG ?= $(if $(wildcard $(HOME)/.kube/config),$(HOME)/.kube/config,/etc/rancher/k3s/k3s.yaml)
export KUBECONFIG
KUBECTL ?= $(shell command -v kubectl >/dev/null 2>&1 && echo kubectl || echo k3s kubectl)
GIT_SHA := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
IMAGE ?= projections-step:$(IMAGE_TAG)
CONTAINER ?= $(shell command -v docker >/dev/null 2>&1 && echo docker || echo podman)
# k3s.yaml is written mode 644 by cluster-up, so kubectl needs no sudo; importing into k3s's
# containerd does (its socket is root's).
K3S_IMPORT ?= $(SUDO) k3s ctr images import -
# Air-gapped k3s: the installer script saved on an online machine (docs/runbooks/cluster.md).
K3S_INSTALL_SCRIPT ?=

cluster-up:
	@if $(KUBECTL) get --raw /readyz >/dev/null 2>&1; then \
	  echo "A cluster answers at $$KUBECONFIG: not installing k3s"; \
	elif [ -n "$(K3S_INSTALL_SCRIPT)" ]; then \
	  INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_VERSION=$(K3S_VERSION) $(SUDO) sh $(K3S_INSTALL_SCRIPT) --write-kubeconfig-mode 644; \
	else \
	  curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=$(K3S_VERSION) $(SUDO) sh -s - --write-kubeconfig-mode 644; \
	fi
	@for i in $$(seq 60); do $(KUBECTL) get --raw /readyz >/dev/null 2>&1 && break; sleep 2; done
	$(KUBECTL) wait --for=condition=Ready node --all --timeout=300s
	$(MAKE) argo-install

argo-install:
	$(KUBECTL) apply --server-side --force-conflicts -k k8s/argo/$(ARGO_INSTALL)
	$(KUBECTL) -n argo rollout status deployment/workflow-controller --timeout=300s
	$(KUBECTL) -n argo rollout status deployment/argo-server --timeout=300s

image:
	$(CONTAINER) build -f images/step/Dockerfile --build-arg GIT_SHA=$(GIT_SHA) -t $(IMAGE) .
	@if command -v k3s >/dev/null 2>&1; then \
	  echo "importing $(IMAGE) into k3s's containerd"; $(CONTAINER) save $(IMAGE) | $(K3S_IMPORT); \
	else \
	  echo "no k3s here: copy the image to the node, e.g. $(CONTAINER) save $(IMAGE) | ssh NODE sudo k3s ctr images import -"; \
	fi

secrets:
	@$(KUBECTL) -n $(NAMESPACE) get secret projections-minio >/dev/null 2>&1 || \
	  $(KUBECTL) -n $(NAMESPACE) create secret generic projections-minio \
	    --from-literal=accesskey=projections \
	    --from-literal=secretkey="$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"

deploy: setup $(HELM)
	$(PY) -m workflows.cli render --check
	$(KUBECTL) create namespace $(NAMESPACE) --dry-run=client -o yaml | $(KUBECTL) apply -f -
	$(KUBECTL) label namespace $(NAMESPACE) pod-security.kubernetes.io/enforce=restricted --overwrite
	$(MAKE) secrets
	$(HELM) upgrade --install projections charts/projections --namespace $(NAMESPACE) \
	  --set image=$(IMAGE) --wait --wait-for-jobs --timeout 10m

ui:
	@echo "Argo UI: https://localhost:2746 (self-signed certificate; Ctrl-C to stop)"
	$(KUBECTL) -n argo port-forward svc/argo-server 2746:2746
