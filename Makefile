# Switchboard — the two commands are `make test` and `make run`; `make help` lists the rest.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

TOOLS_DIR := $(CURDIR)/.tools
NATS_SERVER := $(TOOLS_DIR)/bin/nats-server
DEPLOY_TOOLS := $(TOOLS_DIR)/.deploy-tools
RUN_DIR := $(CURDIR)/.run
export SWITCHBOARD_NATS_SERVER := $(NATS_SERVER)
# Keep parallel test processes within what a 2-core box can carry (each test may run its own nats-server).
export NEXTEST_TEST_THREADS ?= 4

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

.PHONY: tools
tools: $(NATS_SERVER) $(DEPLOY_TOOLS) ## Install pinned tools project-locally into .tools/ (nats-server, kustomize, kubernetes-validate, hadolint).

$(NATS_SERVER): scripts/install-tools.sh
	scripts/install-tools.sh "$(TOOLS_DIR)"

$(DEPLOY_TOOLS): scripts/install-tools.sh deploy/tests/requirements.txt
	scripts/install-tools.sh "$(TOOLS_DIR)"

.PHONY: build
build: ## Build every crate.
	cargo build --workspace --all-targets

.PHONY: test
test: tools ## Install what is needed, then run every test against real servers.
	scripts/test.sh

.PHONY: test-chaos
test-chaos: tools ## Chaos and fault suite at full scale (20,000 calls per scenario, 100,000 bad messages); FUZZ=1 also fuzzes.
	scripts/test-chaos.sh $(if $(FUZZ),--fuzz,)

.PHONY: deploy-check
deploy-check: $(DEPLOY_TOOLS) ## Lint the Dockerfile; render, validate and policy-check the Kubernetes manifests (offline).
	scripts/check-deploy.sh

.PHONY: lint
lint: ## rustfmt check and clippy with -D warnings.
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: fmt
fmt: ## Format the code.
	cargo fmt --all

.PHONY: run
run: tools ## Start the local stack from fresh demo state (nats-server with JetStream in .run/, streams provisioned); KEEP=1 keeps .run/'s data.
	$(if $(KEEP),SWITCHBOARD_RUN_KEEP=$(KEEP) ,)scripts/run.sh "$(RUN_DIR)"

.PHONY: bench
bench: tools ## Run the benchmarks and regenerate docs/benchmarks.md.
	scripts/bench.sh

.PHONY: clean
clean: ## Remove build output, local tools and run data.
	cargo clean
	rm -rf "$(TOOLS_DIR)" "$(RUN_DIR)"
