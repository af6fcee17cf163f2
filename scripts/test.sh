#!/usr/bin/env bash
# `make test`: every check and every test, against real servers started per test.
# Expects `make tools` to have run (the Makefile does it first).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

export PATH="$root/.tools/bin:$PATH"
export SWITCHBOARD_NATS_SERVER="${SWITCHBOARD_NATS_SERVER:-$root/.tools/bin/nats-server}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== format"
cargo fmt --all -- --check

# Dockerfile lint, Kubernetes manifests rendered, schema-validated and policy-checked (offline).
scripts/check-deploy.sh

echo "== clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# `make run`, started four times in a row, answers the README's first steps each time.
scripts/test-run.sh

# Last, so that the test runner's summary closes the output.
echo "== tests (nats-server $("$SWITCHBOARD_NATS_SERVER" --version))"
cargo nextest run --workspace --all-targets --locked
