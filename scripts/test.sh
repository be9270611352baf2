#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration/CLI tests and doc tests.
# Installs what the tests talk to (kubernetes-validate into ./.venv). CI runs this via .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> tools"
if [ ! -x .venv/bin/kubernetes-validate ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.*'
fi
.venv/bin/kubernetes-validate --version
command -v kubectl >/dev/null || { echo "kubectl is required (kubectl kustomize consumes the GitOps directory in tests)"; exit 1; }
command -v git >/dev/null || { echo "git is required"; exit 1; }

if [ "${CI:-}" = "true" ]; then
  # No incremental state in CI: faster from scratch and a much smaller target directory.
  export CARGO_INCREMENTAL=0
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
echo "==> cargo test (unit, integration, CLI end-to-end, doc tests)"
cargo test --workspace --all-features --locked
