# Serin's developer entry points. `make test` is the command CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help demo testbed-build cluster-up cluster-down test lint walkthrough-up walkthrough-down

help:
	@echo "make demo          replay Flagger's NGINX walkthrough on the simulated cluster"
	@echo "make test          build the testbed if needed, start it, run every test, stop it"
	@echo "make cluster-up    start the local control plane and Prometheus (target/testbed/env)"
	@echo "make cluster-down  stop what cluster-up started"
	@echo "make walkthrough-up    the NGINX walkthrough to try with kubectl: cluster, serin, load tester, simulator"
	@echo "make walkthrough-down  stop what walkthrough-up started"
	@echo "make lint          cargo fmt --check and clippy"

demo:
	cargo run --release -- demo

testbed-build:
	@bash tests/cluster/build.sh >/dev/null

cluster-up:
	@bash tests/cluster/cluster-up.sh

cluster-down:
	@bash tests/cluster/cluster-down.sh

# The cluster is stopped whether the tests pass or not; the exit code is the tests'.
test:
	@bash tests/cluster/cluster-up.sh
	@status=0; \
	  bash tests/run.sh || status=$$?; \
	  bash tests/cluster/cluster-down.sh; \
	  exit $$status

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

# Flagger's NGINX walkthrough on the local control plane, to try by hand
# (README.md, "Try the walkthrough on the local control plane").
walkthrough-up:
	@bash tests/walkthrough/up.sh

walkthrough-down:
	@bash tests/walkthrough/down.sh
