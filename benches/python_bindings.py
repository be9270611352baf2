"""Benchmarks of the Python bindings against their peers, in one run on one machine.

    .venv/bin/pip install pandas            # the DORA peer (not needed by the tests)
    CARGO_TARGET_DIR=/var/tmp/paved-ci-target .venv/bin/python benches/python_bindings.py

Rows (BENCHMARKS.md, "Python bindings"):
  1. KV v2 reads, sequential: paved.VaultStore vs hvac, and the raw HTTP floor (http.client,
     one kept-alive connection, no JSON decoding beyond the body read).
  2. KV v2 reads, 32-way: paved.AsyncVaultStore under asyncio.gather vs hvac in 32 threads.
  3. DORA for 50 teams over 1M deployments: pandas (read_json + the keys) vs paved.Ledger
     (import + dora(by="team")), from the same JSON Lines file.
  4. plan of 1,000 apps from Python (paved.Platform.plan); the Rust figure of the same work is
     `cargo bench -p paved-benches --bench plan -- plan_assembled`.
OpenBao comes from the testkit (paved-test-services), as in the tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import paved

ROOT = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def best_of(runs: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def kv_rows(addr: str, token: str) -> None:
    import hvac

    os.environ["VAULT_ADDR"], os.environ["VAULT_TOKEN"] = addr, token
    store = paved.VaultStore()
    store.put("bench/app", {"password": "x" * 32, "user": "app"})
    client = hvac.Client(url=addr, token=token)
    n = 2_000

    def paved_seq() -> None:
        for _ in range(n):
            store.get("bench/app")

    def hvac_seq() -> None:
        for _ in range(n):
            client.secrets.kv.v2.read_secret_version(path="bench/app", mount_point="secret", raise_on_deleted_version=True)

    host, port = addr.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))

    def raw_seq() -> None:
        for _ in range(n):
            conn.request("GET", "/v1/secret/data/bench/app", headers={"X-Vault-Token": token})
            conn.getresponse().read()

    for warm in (paved_seq, hvac_seq, raw_seq):
        warm()
    p, h, r = best_of(3, paved_seq), best_of(3, hvac_seq), best_of(3, raw_seq)
    print(f"kv sequential ({n} reads): paved {p / n * 1e6:.0f} µs/read, hvac {h / n * 1e6:.0f} µs/read, "
          f"raw http.client {r / n * 1e6:.0f} µs/read; hvac/paved {h / p:.2f}x")

    total = 4_000
    astore = paved.AsyncVaultStore()

    async def paved_32() -> None:
        async def worker() -> None:
            for _ in range(total // 32):
                await astore.get("bench/app")

        await asyncio.gather(*(worker() for _ in range(32)))

    local = threading.local()

    def hvac_read(_: int) -> None:
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = hvac.Client(url=addr, token=token)
        c.secrets.kv.v2.read_secret_version(path="bench/app", mount_point="secret", raise_on_deleted_version=True)

    pool = ThreadPoolExecutor(32)

    def hvac_32() -> None:
        list(pool.map(hvac_read, range(total)))

    asyncio.run(paved_32())
    hvac_32()
    p32 = best_of(3, lambda: asyncio.run(paved_32()))
    h32 = best_of(3, hvac_32)
    print(f"kv 32-way ({total} reads): paved asyncio {total / p32:.0f} reads/s, hvac 32 threads {total / h32:.0f} reads/s; "
          f"paved/hvac {h32 / p32:.2f}x")


def dora_rows(tmp: Path) -> None:
    import pandas as pd

    path = tmp / "events.jsonl"
    rng = random.Random(11)
    start = int(dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc).timestamp())
    fmt = lambda t: dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    n = 1_000_000
    with path.open("w") as f:
        for i in range(n):
            team = f"team-{i % 50}"
            t = start + rng.randrange(0, 365 * 86_400)
            status = "success" if rng.random() < 0.9 else ("failure" if rng.random() < 0.6 else "rolled_back")
            f.write(json.dumps({
                "type": "deployment", "id": f"d-{i}", "service": f"{team}-s{i % 7}", "team": team,
                "environment": "production" if rng.random() < 0.7 else "staging", "status": status,
                "started_at": fmt(t), "finished_at": fmt(t + 420),
                "commits": [{"sha": f"{i:08x}", "committed_at": fmt(t - rng.randrange(600, 5 * 86_400))}],
            }) + "\n")
    now = "2026-11-30T00:00:00Z"
    size = path.stat().st_size

    def with_pandas() -> Any:
        df = pd.read_json(path, lines=True)
        df["finished_at"] = pd.to_datetime(df["finished_at"], utc=True)
        end = pd.Timestamp(now)
        w = df[(df.environment == "production") & (df.finished_at > end - pd.Timedelta(days=30)) & (df.finished_at <= end)]
        commits = w[["team", "finished_at", "commits", "status"]].explode("commits")
        commits["committed_at"] = pd.to_datetime(commits["commits"].map(lambda c: c["committed_at"]), utc=True)
        commits = commits[commits.status == "success"]
        lead = (commits.finished_at - commits.committed_at).dt.total_seconds().groupby(commits.team).median()
        g = w.groupby("team")
        return pd.DataFrame({
            "deployments": g.size(),
            "deployment_days": g.finished_at.apply(lambda s: s.dt.floor("D").nunique()),
            "change_failure_rate": g.status.apply(lambda s: (s != "success").mean()),
            "lead_time_median_s": lead,
        })

    split: dict[str, float] = {}

    def with_paved() -> Any:
        state = Path(tempfile.mkdtemp(dir=tmp))
        ledger = paved.Ledger(state)
        started = time.perf_counter()
        ledger.import_events(path)
        split["import"] = time.perf_counter() - started
        started = time.perf_counter()
        report = ledger.dora(now=now, by="team")
        split["query"] = time.perf_counter() - started
        return report

    pd_t = best_of(2, with_pandas)
    pv_t = best_of(2, with_paved)
    groups = len(with_paved()["groups"])
    print(f"dora 50 teams / {n} deployments ({size / 1e6:.0f} MB JSONL): pandas {pd_t:.2f} s, "
          f"paved import + query {pv_t:.2f} s (import {split['import']:.2f} s, query {split['query'] * 1e3:.0f} ms; "
          f"{groups} groups); pandas/paved {pd_t / pv_t:.2f}x; a second query on the ledger is pandas/query "
          f"{pd_t / split['query']:.0f}x")


def plan_row(tmp: Path) -> None:
    platform = paved.Platform(state_dir=tmp / "plan")

    def plan_1000() -> None:
        for i in range(1000):
            app = "my-service" if i == 0 else f"service-{i}"
            platform.plan(app=app, image=f"ghcr.io/company/{app}:v1.2.3", env="production", replicas=3)

    plan_1000()
    t = best_of(5, plan_1000)
    print(f"plan 1000 apps from Python: {t * 1e3:.1f} ms ({t:.4f} s); compare plan_assembled/1000_apps of the Rust bench")


def main() -> None:
    which = set(sys.argv[1:]) or {"kv", "dora", "plan"}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "kv" in which:
            proc = subprocess.Popen([str(TARGET / "debug" / "paved-test-services"), "openbao"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert proc.stdout and proc.stdin
            bao = json.loads(proc.stdout.readline())["openbao"]
            try:
                kv_rows(bao["addr"], bao["token"])
            finally:
                proc.stdin.close()
                proc.wait()
        if "plan" in which:
            plan_row(tmp)
        if "dora" in which:
            dora_rows(tmp)


if __name__ == "__main__":
    main()
