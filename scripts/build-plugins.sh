#!/usr/bin/env bash
# Builds every policy plugin from source with `paved policy build` (Rust for wasm32-wasip2,
# Python with componentize-py, JavaScript with componentize-js) and writes their sha256 pins.
# Installs the toolchains it needs: the wasm32-wasip2 Rust target, componentize-py into
# ./.venv, componentize-js into plugins/node_modules (from plugins/package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
[ -x .venv/bin/python ] || python3 -m venv .venv
[ -x .venv/bin/componentize-py ] || .venv/bin/pip install --quiet --disable-pip-version-check 'componentize-py==0.25.1'
if [ ! -x plugins/node_modules/.bin/componentize-js ]; then
  (cd plugins && npm ci --no-audit --no-fund --loglevel=error)
fi

# The same feature set as clippy and the tests (--workspace --all-features): one build of the
# dependencies, shared with `cargo test`.
cargo build --locked --workspace --all-features --bin paved --quiet
paved="${CARGO_TARGET_DIR:-target}/debug/paved"
dirs=()
for manifest in plugins/*/policy.toml plugins/testdata/*/policy.toml; do
  dirs+=("$(dirname "$manifest")")
done
"$paved" policy build "${dirs[@]}"
