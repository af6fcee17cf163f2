#!/usr/bin/env bash
# Flake check (issue 14): the whole nextest suite N times in a row (default 10) while one core
# is kept busy by a CPU hog, no retries. Prints one line per run and the failed tests.
# Run it from a clean checkout; expects `make tools` to have run.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs="${1:-10}"
export SWITCHBOARD_NATS_SERVER="${SWITCHBOARD_NATS_SERVER:-$root/.tools/bin/nats-server}"
export NEXTEST_TEST_THREADS="${NEXTEST_TEST_THREADS:-4}"
out="$root/target/soak"
mkdir -p "$out"
echo "commit $(git rev-parse --short HEAD), $runs runs, started $(date -u +%H:%M:%S)"
cargo nextest run --workspace --all-targets --locked --no-run >/dev/null 2>&1
timeout 7200 sh -c 'while :; do :; done' &
hog=$!
trap 'kill $hog 2>/dev/null' EXIT
failed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  cargo nextest run --workspace --all-targets --locked --no-fail-fast >"$out/run-$i.log" 2>&1
  rc=$?
  [ "$rc" -ne 0 ] && failed=$((failed + 1))
  echo "run $i: exit $rc, $(( $(date +%s) - start )) s, $(grep -E '^ +Summary' "$out/run-$i.log" | tail -1 | sed 's/^ *//')"
  grep -E '^ +FAIL \[' "$out/run-$i.log" | sort -u
done
echo "$((runs - failed)) of $runs runs passed"
[ "$failed" -eq 0 ]
