#!/usr/bin/env bash
# `make bench`: release build of the benchmark harness, then every benchmark; regenerates
# docs/benchmarks.md and docs/benchmarks.json. Extra arguments go to switchboard-bench
# (e.g. `scripts/bench.sh --calls 20000` for a quick run).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export SWITCHBOARD_NATS_SERVER="${SWITCHBOARD_NATS_SERVER:-$root/.tools/bin/nats-server}"
export RUST_LOG="${RUST_LOG:-warn}"
cargo run --release --locked -p switchboard-bench -- "$@"
