#!/usr/bin/env bash
# `make deploy-check`, also run by `make test`: lints deploy/Dockerfile (hadolint), then renders
# deploy/base and every overlay in deploy/overlays with the pinned kustomize (and with
# `kubectl kustomize` too where kubectl is installed: both must agree), validates every object
# offline against the Kubernetes schemas (custom resources against deploy/tests/schemas), and
# checks security, probes, resources, references and per-environment rules
# (deploy/tests/check_manifests.py says what exactly). Offline, a few seconds.
# Expects `make tools` to have run (scripts/install-tools.sh .tools).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
tools="${SWITCHBOARD_TOOLS_DIR:-$root/.tools}"
venv="$tools/deploy-venv"
if [[ ! -x "$tools/bin/kustomize" || ! -x "$venv/bin/python" || ! -x "$venv/bin/hadolint" ]]; then
  echo "check-deploy.sh: tools missing; run: scripts/install-tools.sh $tools" >&2
  exit 1
fi

echo "== Dockerfile ($("$venv/bin/hadolint" --version))"
"$venv/bin/hadolint" --failure-threshold info deploy/Dockerfile
echo "  deploy/Dockerfile: no findings"

kubectl=()
if command -v kubectl >/dev/null 2>&1; then
  kubectl=(--kubectl "$(command -v kubectl)")
  also=", cross-checked with kubectl kustomize $(kubectl version --client 2>/dev/null | grep -io 'kustomize version: v[0-9.]*' | grep -o 'v[0-9.]*')"
else
  also="; kubectl not installed: not cross-checked with kubectl kustomize"
fi
echo "== Kubernetes manifests (kustomize $("$tools/bin/kustomize" version | grep -o 'v[0-9][0-9.]*' | head -1)${also})"
"$venv/bin/python" deploy/tests/check_manifests.py --repo "$root" --kustomize "$tools/bin/kustomize" "${kubectl[@]}"
