# StreamFlow — two commands: `make up` (stack + bootstrap_pipeline) and `make test` (all tests).
# `make up` installs only what the local stack needs (scripts/setup.sh); `make test` adds the test tools
# (scripts/setup_test_tools.sh: dev venv, Kubernetes tools, chromium, actionlint).
SHELL := /bin/bash
.DEFAULT_GOAL := help
INSTALL := $(or $(STREAMFLOW_INSTALL_DIR),$(STREAMFLOW_STATE_DIR),.streamflow)
VENV := $(INSTALL)/venvs
SF := bin/streamflow
DEV_PY := $(VENV)/dev/bin/python
FLINK_PY := $(VENV)/flink/bin/python
PYTEST_ARGS ?=

.PHONY: help preflight setup setup-test up down status doctor bootstrap test test-unit lint bench images k8s-images k8s-operator k8s-node-bin k8s-render k8s-deploy k8s-api k8s-cluster-up k8s-cluster-down test-k8s clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

preflight: ## list every missing prerequisite with the command that installs it (stack + tests)
	@bash scripts/preflight.sh --test

setup: ## install what the local stack needs (idempotent; apt, uv venvs from locks/, Maven jars, dbt manifest)
	@bash scripts/setup.sh

setup-test: setup ## also install what the tests need (dev venv, kustomize/CRDs, kube-apiserver, chromium, actionlint)
	@bash scripts/setup_test_tools.sh

up: setup ## start the local stack, run bootstrap_pipeline to a populated gold layer (or resume it), print the URLs
	@echo "[up 1/3] local stack: PostgreSQL, Kafka, Airflow, and a bootstrapped pipeline's Flink jobs (~60 s; ~90 s the first time)"
	@$(SF) up --resume --no-status
	@echo "[up 2/3] pipeline: bootstrap_pipeline on a new stack (topics, Flink jobs, generator, bronze, dbt silver + gold; ~4 min), else resume the Flink jobs (~1 min)"
	@$(SF) bootstrap --if-needed
	@echo "[up 3/3] status"
	@$(SF) status || true

down: ## stop every local service and Flink job
	@$(SF) down

status: ## services, URLs, credentials, consumer lag
	@$(SF) status

doctor: ## check every part (services, Flink jobs, lag, DLQ, dbt_quality, disk) and print the fixes
	@$(SF) doctor

bootstrap: ## trigger bootstrap_pipeline on a running stack and follow it
	@$(SF) bootstrap

test: setup-test lint ## set-up + lint + the whole test suite (unit, integration, e2e)
	@bash scripts/run_tests.sh $(PYTEST_ARGS)

test-unit: setup-test ## unit tests only (seconds, no services)
	@$(DEV_PY) -m pytest tests/unit -q -p no:cacheprovider
	@$(FLINK_PY) -m pytest tests/flink -q --confcutdir=tests/flink

lint: setup-test ## ruff + mypy + import contracts (.importlinter: layers, no cycles)
	@$(VENV)/dev/bin/ruff check .
	@$(VENV)/dev/bin/mypy streamflow generator dags plugins bench
	@$(VENV)/dev/bin/lint-imports --no-cache

bench: setup-test ## run every benchmark (or one: make bench B=generator_throughput) and regenerate bench/BENCHMARKS.md
	@$(DEV_PY) -m bench $(B)

images: ## build the container images (needs a Docker engine)
	@bash scripts/build_images.sh

k8s-images: ## build our three images with podman from an mmdebstrap Debian base (no Docker, no registry; ~30 min cold, ~90 s warm)
	@bash scripts/k8s_images.sh all

k8s-operator: ## build the Flink Kubernetes Operator 1.10.0 jar from ../shared/vendor with Maven (cached under .streamflow/)
	@bash scripts/k8s_operator_build.sh

k8s-node-bin: ## compile kubelet, kube-controller-manager, kube-scheduler, kube-proxy and CoreDNS from the Go module proxy
	@bash scripts/build_k8s_binaries.sh node

k8s-render: ## render the single-node overlay with kustomize (to stdout)
	@bash scripts/k8s_render.sh

k8s-deploy: ## install the operators with Helm, then apply the overlay (needs a cluster + kubectl/helm)
	@bash scripts/k8s_deploy.sh

k8s-api: ## start a real kube-apiserver + etcd on 127.0.0.1 (for trying the kubernetes runtime)
	@bash scripts/k8s_api.sh

k8s-cluster-up: ## a real single-node Kubernetes from processes (198.18.0.0/15; prints KUBECONFIG; root)
	@bash scripts/k8s_cluster.sh up

k8s-cluster-down: ## stop it and remove every process, mount, bridge and iptables rule it added
	@bash scripts/k8s_cluster.sh down

test-k8s: setup-test ## real cluster: generator pod + the Flink operator reconciling our FlinkDeployment (root; alone)
	@bash scripts/test_k8s.sh

clean: ## stop everything and delete all local state (.streamflow/); works after a failed set-up too
	@bash scripts/clean.sh
