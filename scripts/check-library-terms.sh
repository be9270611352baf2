#!/usr/bin/env bash
# Library hints and messages speak the library's terms (request fields, configuration keys,
# library calls), never a front end's flags or commands: every front end (CLI, Python, HTTP)
# shows them, and the CLI translates the terms into its flags (crates/paved-cli/src/terms.rs,
# paved_core::hint). Fails naming each library line that names a CLI command or flag.
set -euo pipefail
cd "$(dirname "$0")/.."
commands='paved (deploy|plan|render|status|history|rollback|destroy|secrets|db|policy|metrics|events)\b'
flags='--(app|env|image|replicas|team|target|secret|config|state-dir|kubeconfig|context|timeout|no-rollback|force-conflicts|(cpu|memory)-(request|limit)|custom-manifest|extra-manifest|no-(rollback|hpa|pdb|network-policy|ingress|service-monitor|dashboard|alerts|tracing|mesh|record)|engine|size|by|window|catalog|strict|now)\b'
library=$(ls -d crates/*/ | grep -v '^crates/paved-cli/$')
# Doc comments may show the CLI next to the library call, and arguments of other programs
# (`.arg(…)`, cargo, the test servers) are theirs, and the pipelines paved-pipeline generates
# run the CLI (its tests check those commands); hints and messages may not.
bad=$(grep -rnE --include='*.rs' "$commands|\"[^\"]*$flags" $library \
  | grep -vE '^[^:]+:[0-9]+:\s*//' | grep -vE '\.args?\(|"cargo |^crates/paved-testkit/src/lib\.rs:|^crates/paved-pipeline/tests/' || true)
if [ -n "$bad" ]; then
  echo "library code names CLI commands or flags; write library terms (see paved_core::hint):" >&2
  echo "$bad" | sed 's/^/  /' >&2
  echo "hint: name the request field or library call in backticks and add its CLI words to crates/paved-cli/src/terms.rs" >&2
  exit 1
fi
echo "library terms check: no CLI command or flag in $(echo $library | wc -w) library crates"
