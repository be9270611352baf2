"""The scripts of examples/python run as documented in README.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT, vault_put
from test_ledger_policy_databases import events

EXAMPLES = ROOT / "examples" / "python"


def run(script: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)


def test_deploy_script(workdir: Path) -> None:
    out = run("deploy.py", "my-service", "ghcr.io/company/my-service:v1.2.3", "production", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "my-service deployed in production: revision 1" in out.stdout
    assert "https://my-service.production.example.com" in out.stdout
    assert "validate:" in out.stderr
    bad = run("deploy.py", "my-service", "ghcr.io/company/my-service:v1.2.3", "prodution", cwd=workdir)
    assert bad.returncode == 2 and 'did you mean "production"?' in bad.stderr


def test_dora_report_script(workdir: Path) -> None:
    (workdir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events()))
    out = run("dora_report.py", "events.jsonl", "--window-days", "3650", cwd=workdir)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["TEAM", "DEPLOYS", "LEAD", "TIME", "CFR", "RECOVERY"]
    assert [line.split()[0] for line in lines[1:]] == [f"team-{i}" for i in range(5)]


def test_provision_database_script(bao: dict[str, Any], postgres: dict[str, Any], workdir: Path) -> None:
    vault_put(bao, "secret/platform/db-admin", password=postgres["password"])
    (workdir / "paved.toml").write_text(
        f'[vault]\naddress = "{bao["addr"]}"\n\n[databases.main]\nengine = "postgres"\nhost = "127.0.0.1"\n'
        f'port = {postgres["port"]}\nadmin_username = "postgres"\n'
        'admin_password = "vault://secret/platform/db-admin#password"\n'
    )
    out = run("provision_database.py", "orders", "order-service", "postgres", "staging", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "status": "provisioned",
        "endpoint": f"127.0.0.1:{postgres['port']}",
        "vault_path": "secret/database/orders/order-service/staging",
    }
    assert postgres["password"] not in out.stdout + out.stderr
    usage = run("provision_database.py", "orders", cwd=workdir)
    assert usage.returncode == 2
