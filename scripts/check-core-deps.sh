#!/usr/bin/env bash
# paved-core stays types-only: no HTTP client, Kubernetes client, wasm engine, database driver
# or TLS stack may enter its dependency tree (normal dependencies, all features). Backends depend
# on core, never the other way round (ARCHITECTURE.md). Exits 1 naming what came in.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(reqwest|hyper|hyper-util|h2|ureq|isahc|surf|kube|kube-client|kube-runtime|k8s-openapi|wasmtime|wasmtime-wasi|cranelift-codegen|rusqlite|libsqlite3-sys|tokio-postgres|postgres|mysql_async|sqlx|vaultrs|aws-config|aws-sdk-[a-z0-9-]+|aws-smithy-runtime|rustls|openssl|native-tls|pyo3|axum|tonic)$'
tree=$(cargo tree --locked -p paved-core --all-features -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(grep -E "$forbidden" <<<"$tree" || true)
if [ -n "$bad" ]; then
  echo "paved-core must not depend on I/O stacks; found in its dependency tree:" >&2
  echo "$bad" | sed 's/^/  /' >&2
  echo "hint: put the code that needs it in a backend crate (see ARCHITECTURE.md, 'Adding a backend')" >&2
  exit 1
fi
# Workspace crates: core may depend on none of them.
own=$(grep -E '^paved-' <<<"$tree" | grep -v '^paved-core$' || true)
if [ -n "$own" ]; then
  echo "paved-core must not depend on other paved crates; found: $own" >&2
  exit 1
fi
echo "paved-core dependency check: $(wc -l <<<"$tree") crates, no I/O stack"
