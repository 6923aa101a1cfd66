# A real Kubernetes API server for the tests, plus kubectl and kustomize, built from their Go
# modules into $(TOOLS) (cached: file targets here, Go's build cache underneath). etcd comes from
# Debian. Included by the main Makefile, which defines TOOLS and SUDO.
KUBE_MOD := $(CURDIR)/tools/kube
KUBE_APISERVER := $(TOOLS)/kube-apiserver
KUBECTL_BIN := $(TOOLS)/kubectl
KUSTOMIZE := $(TOOLS)/kustomize
# v5.8.3 needs Go >= 1.27.
KUSTOMIZE_VERSION := v5.8.2
ETCD_BIN := /usr/bin/etcd
KUBE_TOOLS := $(KUBE_APISERVER) $(KUBECTL_BIN) $(KUSTOMIZE) $(ETCD_BIN)

.PHONY: kube-tools
kube-tools: $(KUBE_TOOLS)

# Kubernetes' own build stamps its version into these packages with -ldflags -X; so do we, or
# `kubectl version` and /version report v0.0.0-master.
KUBE_VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version

# tools/kube/go.mod pins k8s.io/kubernetes and its staging modules; a version bump rebuilds.
$(KUBE_APISERVER) $(KUBECTL_BIN): $(TOOLS)/%: $(KUBE_MOD)/go.mod $(KUBE_MOD)/go.sum
	mkdir -p $(TOOLS)
	cd $(KUBE_MOD) && v=$$(go list -m -f '{{.Version}}' k8s.io/kubernetes) && minor=$${v#v1.} && \
	  GOFLAGS=-buildvcs=false go build -o $@ \
	    -ldflags "$(foreach p,$(KUBE_VERSION_PKGS),-X $(p).gitVersion=$$v -X $(p).gitMajor=1 -X $(p).gitMinor=$${minor%%.*})" \
	    k8s.io/kubernetes/cmd/$*

$(KUSTOMIZE):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) GOFLAGS=-buildvcs=false go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

$(ETCD_BIN):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null

# The same files by their paths relative to the repo, e.g. `make .tools/bin/kube-apiserver`.
$(patsubst $(CURDIR)/%,%,$(filter $(CURDIR)/%,$(KUBE_TOOLS))): %: $(CURDIR)/%
