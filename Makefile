# StreamFlow — two commands: `make up` (stack + bootstrap_pipeline) and `make test` (all tests).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .streamflow/venvs
SF := bin/streamflow
DEV_PY := $(VENV)/dev/bin/python
FLINK_PY := $(VENV)/flink/bin/python
PYTEST_ARGS ?=

.PHONY: help setup up down status bootstrap test test-unit lint bench images k8s-render k8s-deploy k8s-api clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## install everything the stack needs (idempotent; apt, uv venvs from locks/, Maven jars)
	@bash scripts/setup.sh
	@$(SF) prepare

up: setup ## start the local stack, run bootstrap_pipeline to a populated gold layer, print the URLs
	@$(SF) up
	@$(SF) bootstrap
	@$(SF) status || true

down: ## stop every local service and Flink job
	@$(SF) down

status: ## services, URLs, credentials
	@$(SF) status

bootstrap: ## trigger bootstrap_pipeline on a running stack and follow it
	@$(SF) bootstrap

test: setup lint ## set-up + lint + the whole test suite (unit, integration, e2e)
	@bash scripts/run_tests.sh $(PYTEST_ARGS)

test-unit: setup ## unit tests only (seconds, no services)
	@$(DEV_PY) -m pytest tests/unit -q -p no:cacheprovider
	@$(FLINK_PY) -m pytest tests/flink -q --confcutdir=tests/flink

lint: setup ## ruff + mypy
	@$(VENV)/dev/bin/ruff check .
	@$(VENV)/dev/bin/mypy streamflow generator dags plugins bench

bench: setup ## run every benchmark (or one: make bench B=generator_throughput) and regenerate bench/BENCHMARKS.md
	@$(DEV_PY) -m bench $(B)

images: ## build the container images (needs a Docker engine)
	@bash scripts/build_images.sh

k8s-render: ## render the single-node overlay with kustomize (to stdout)
	@bash scripts/k8s_render.sh

k8s-deploy: ## install the operators with Helm, then apply the overlay (needs a cluster + kubectl/helm)
	@bash scripts/k8s_deploy.sh

k8s-api: ## start a real kube-apiserver + etcd on 127.0.0.1 (for trying the kubernetes runtime)
	@bash scripts/k8s_api.sh

clean: down ## stop and delete all local state (.streamflow/)
	rm -rf .streamflow
