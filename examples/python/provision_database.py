"""Provision a database self-service, as the original design's `POST /api/databases/provision`
does, and print its answer: status, endpoint and where the connection info is.

    python examples/python/provision_database.py payments payment-service postgres staging

The database server comes from `[databases.NAME]` of paved.toml (Vault's database secrets
engine on PostgreSQL/MariaDB, or AWS RDS/DocumentDB); Vault's address and token from the
environment (VAULT_ADDR, VAULT_TOKEN), AWS's from the standard credential chain.
"""

from __future__ import annotations

import json
import sys

import paved


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: provision_database.py TEAM SERVICE ENGINE ENV", file=sys.stderr)
        return 2
    team, service, engine, env = argv
    platform = paved.Platform()
    try:
        db = platform.provision_database(team, service, engine, env, size="small")
    except paved.PavedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, paved.InvalidInput) else 1
    for warning in db.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps({"status": db.status, "endpoint": db.endpoint, "vault_path": db.vault_path}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
