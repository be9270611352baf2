"""DORA and adoption through paved.Ledger against the CLI's JSON on the same events, policy
checks against `paved policy check`, and databases provisioned on real OpenBao + PostgreSQL."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

import paved
from conftest import ROOT, cli, vault_put

NOW = "2026-11-30T00:00:00Z"


def events(n: int = 400) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out: list[dict[str, Any]] = []
    for i in range(n):
        team = f"team-{i % 5}"
        start = 1_761_955_200 + i * 5_400  # from 2025-11-01, every 90 minutes
        status = rng.choice(["success"] * 8 + ["failure", "rolled_back"])
        out.append({
            "type": "deployment", "id": f"d-{i}", "service": f"{team}-svc-{i % 3}", "team": team,
            "environment": "production" if i % 4 else "staging", "status": status,
            "started_at": _t(start), "finished_at": _t(start + 600),
            "commits": [{"sha": f"{i:07x}", "committed_at": _t(start - rng.randint(600, 86_400 * 3))}],
        })
        if i % 37 == 0:
            out.append({"type": "incident", "id": f"inc-{i}", "service": f"{team}-svc-{i % 3}", "team": team,
                        "environment": "production",
                        "opened_at": _t(start + 1_200), "resolved_at": _t(start + 1_200 + rng.randint(600, 20_000)),
                        "deployment_id": f"d-{i}"})
    return out


def _t(unix: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_dora_and_adoption_equal_the_cli_json(workdir: Path) -> None:
    lines = events()
    jsonl = workdir / "events.jsonl"
    jsonl.write_text("".join(json.dumps(e) + "\n" for e in lines))
    run = cli("--state-dir", "cli", "events", "import", str(jsonl), cwd=workdir)
    assert run.returncode == 0, run.stderr

    from_path = paved.Ledger(workdir / "py-path")
    report = from_path.import_events(jsonl)
    from_iter = paved.Ledger(workdir / "py-iter")
    assert from_iter.import_events(iter(lines)) == report
    assert report["deployments"] == 400 and report["rejected"] == []

    for args, kwargs in [
        ((), {}),
        (("--window", "90d"), {"window_days": 90}),
        (("--team", "team-1", "--window", "7d"), {"team": "team-1", "window_days": 7}),
        (("--env", "staging"), {"env": "staging"}),
        (("--by", "team"), {"by": "team"}),
        (("--service", "team-2-svc-1", "--window", "12h"), {"service": "team-2-svc-1", "window_days": 0.5}),
    ]:
        run = cli("--state-dir", "cli", "--output", "json", "metrics", "dora", "--now", NOW, *args, cwd=workdir)
        assert run.returncode == 0, run.stderr
        theirs = json.loads(run.stdout)
        assert from_path.dora(now=NOW, **kwargs) == theirs, args
        assert from_iter.dora(now=NOW, **kwargs) == theirs, args

    run = cli("--state-dir", "cli", "--output", "json", "metrics", "adoption", "--now", NOW, cwd=workdir)
    assert run.returncode == 0, run.stderr
    assert from_path.adoption(now=NOW) == json.loads(run.stdout)


def test_ledger_bad_input(workdir: Path) -> None:
    ledger = paved.Ledger(workdir / "state")
    with pytest.raises(paved.InvalidInput) as env:
        ledger.dora(env="prodution")
    assert env.value.hint and "production" in env.value.hint
    with pytest.raises(paved.InvalidInput):
        ledger.dora(window_days=0.01)
    report = ledger.import_events([{"type": "deployment", "id": "x"}, {"type": "nope"}])
    assert len(report["rejected"]) == 2 and report["deployments"] == 0
    strict = ledger.import_events([*events(3), {"type": "nope"}], strict=True)
    assert strict["aborted"] is True and ledger.dora(now=NOW, window_days=3650)["deployment_frequency"]["deployments"] == 0
    with pytest.raises(TypeError):
        ledger.import_events([{"type": "deployment", "id": object()}])


def test_record_then_query(workdir: Path) -> None:
    ledger = paved.Ledger(workdir / "state")
    ledger.import_events([events(1)[0]])
    assert ledger.dora(now=NOW, window_days=3650, env="staging")["deployment_frequency"]["deployments"] == 1


def test_policy_check_rows_equal_the_cli(workdir: Path) -> None:
    plugin = ROOT / "plugins" / "disallow-latest-tag"
    if not (plugin / "policy.wasm").is_file():
        pytest.fail("plugins are not built: bash scripts/build-plugins.sh")
    objects = (plugin / "tests" / "fail.yaml").read_text()
    # The component itself (a plugin directory would need its pin, which scripts/build-plugins.sh writes).
    component = plugin / "policy.wasm"
    run = cli("--output", "json", "policy", "check", "--file", str(plugin / "tests" / "fail.yaml"), "--policy",
              str(component), cwd=workdir)
    assert run.returncode == 1, run.stderr
    policies = paved.PolicySet([component])
    mine = policies.check(objects)
    # The CLI's document, and `failed` for its exit code.
    assert mine.pop("failed") is True
    assert mine == json.loads(run.stdout)
    assert mine["totals"]["fail"] >= 1
    # The same objects as dicts give the same rows.
    import yaml  # type: ignore[import-untyped]

    assert policies.check(list(yaml.safe_load_all(objects))) == {**mine, "failed": True}
    with pytest.raises(paved.InvalidInput) as action:
        policies.check(objects, action="deplyo")
    assert action.value.hint and "deploy" in action.value.hint
    with pytest.raises(paved.PavedError):
        paved.PolicySet([workdir / "no-such-plugin"])


def test_databases_on_openbao_and_postgres(bao: dict[str, Any], postgres: dict[str, Any], workdir: Path) -> None:
    vault_put(bao, "secret/platform/db-admin", password=postgres["password"])
    config = {
        "vault": {"address": bao["addr"]},
        "databases": {"main": {"engine": "postgres", "host": "127.0.0.1", "port": postgres["port"],
                               "admin_username": postgres["user"],
                               "admin_password": "vault://secret/platform/db-admin#password"}},
    }
    steps: list[str] = []
    platform = paved.Platform(config, state_dir=workdir / ".paved")
    out = platform.provision_database("payments", "payment-service", "postgres", "production",
                                      progress=lambda p: steps.append(p.step))
    assert out.status == "provisioned"
    assert out.vault_path == "secret/database/payments/payment-service/production"  # KV mount + the original path
    assert out.endpoint == f"127.0.0.1:{postgres['port']}"
    assert postgres["password"] not in repr(out) + json.dumps(out.to_dict())
    status = platform.database_status("payments", "payment-service", "postgres", "production")
    assert (status.state, status.database) == ("available", "payments__payment_service__production")
    info = paved.VaultStore().get("database/payments/payment-service/production")
    assert info["database"].reveal() == "payments__payment_service__production"
    with pytest.raises(paved.InvalidInput) as engine:
        platform.provision_database("payments", "payment-service", "postgress", "production")
    assert engine.value.hint and "postgres" in engine.value.hint
    assert platform.deprovision_database("payments", "payment-service", "postgres", "production", drop_data=True) == []
    assert platform.database_status("payments", "payment-service", "postgres", "production").state == "absent"

    # A database of that name that paved did not create is not taken over.
    create = subprocess.run(
        ["psql", "-X", "-h", "127.0.0.1", "-p", str(postgres["port"]), "-U", "postgres", "-d", "postgres", "-c",
         "CREATE DATABASE shop__cart__production"],
        env={"PGPASSWORD": postgres["password"], "PATH": _pg_path()}, capture_output=True, text=True,
    )
    assert create.returncode == 0, create.stderr
    with pytest.raises(paved.Conflict) as conflict:
        platform.provision_database("shop", "cart", "postgres", "production")
    assert conflict.value.kind == "conflict" and conflict.value.hint


def _pg_path() -> str:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    return ":".join([*(str(b) for b in bins), "/usr/bin", "/bin"])


def test_a_mysql_database_on_openbao_and_mariadb(
    bao: dict[str, Any], services: dict[str, Any], workdir: Path
) -> None:
    if "mariadb" not in services:
        from conftest import missing

        missing("MariaDB")
    db = services["mariadb"]
    vault_put(bao, "secret/platform/mysql-admin", password=db["password"])
    config = {
        "vault": {"address": bao["addr"]},
        "databases": {"mysql": {"engine": "mysql", "host": "127.0.0.1", "port": db["port"],
                                "admin_username": db["user"],
                                "admin_password": "vault://secret/platform/mysql-admin#password"}},
    }

    async def main() -> tuple[paved.DatabaseResult, paved.DatabaseStatus]:
        platform = paved.AsyncPlatform(config, state_dir=workdir / ".paved")
        out = await platform.provision_database("orders", "order-service", "mysql", "staging", size="medium")
        status = await platform.database_status("orders", "order-service", "mysql", "staging")
        await platform.deprovision_database("orders", "order-service", "mysql", "staging", drop_data=True)
        return out, status

    import asyncio

    out, status = asyncio.run(main())
    assert out.status == "provisioned" and out.endpoint == f"127.0.0.1:{db['port']}"
    assert status.state == "available" and status.port == db["port"]
    assert db["password"] not in repr(out) + repr(status)


def test_record_as_the_cli_records(workdir: Path) -> None:
    ledger = paved.Ledger(workdir / "py")
    mine = ledger.record({"type": "deployment", "id": "d-42"}, service="checkout", team="shop", status="success",
                         started_at="2026-11-01T10:00:00Z", finished_at="2026-11-01T10:05:00Z",
                         commits=[{"sha": "a1b2c3", "committed_at": "2026-11-01T09:00:00Z"}])
    run = cli("--state-dir", "cli", "--output", "json", "events", "record", "--type", "deployment", "--id", "d-42",
              "--service", "checkout", "--team", "shop", "--status", "success", "--started-at", "2026-11-01T10:00:00Z",
              "--finished-at", "2026-11-01T10:05:00Z", "--commit", "a1b2c3@2026-11-01T09:00:00Z", cwd=workdir)
    assert run.returncode == 0, run.stderr
    assert mine == json.loads(run.stdout)
    assert mine["environment"] == "production"
    assert ledger.dora(now=NOW)["deployment_frequency"]["deployments"] == 1
    with pytest.raises(paved.InvalidInput) as bad:
        ledger.record(type="deployment", id="d-43", service="checkout", team="shop", status="sucess",
                      started_at="2026-11-01T10:00:00Z", finished_at="2026-11-01T10:05:00Z")
    assert bad.value.hint
