"""Shared fixtures: the real services the Rust tests use, started by the testkit's
``paved-test-services`` binary (OpenBao, PostgreSQL, MariaDB, moto), and the ``paved`` CLI
for comparisons. Outside CI a missing service skips its tests; in CI (``CI=true``) it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[3]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")


def binary(name: str) -> Path:
    """A binary of the workspace's debug build (``cargo test`` builds them)."""
    path = TARGET / "debug" / name
    if not path.is_file():
        message = f"{path} is missing: build it with `cargo build -p paved-cli -p paved-testkit`"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def missing(what: str) -> None:
    message = f"{what} is not installed (scripts/test.sh installs it)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def services() -> Iterator[dict[str, Any]]:
    """Where the services listen: {"openbao": {"addr", "token", "bin"}, "postgres": {...}, ...}."""
    proc = subprocess.Popen(
        [str(binary("paved-test-services")), "openbao", "postgres", "mariadb", "moto"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        pytest.fail("paved-test-services did not start its services (see its stderr)")
    try:
        yield json.loads(line)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


@pytest.fixture()
def bao(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """OpenBao, with VAULT_ADDR and VAULT_TOKEN set as a user's shell would have them."""
    if "openbao" not in services:
        missing("OpenBao (bao)")
    bao: dict[str, Any] = services["openbao"]
    monkeypatch.setenv("VAULT_ADDR", bao["addr"])
    monkeypatch.setenv("VAULT_TOKEN", bao["token"])
    for name in ("BAO_ADDR", "BAO_TOKEN", "PAVED_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return bao


@pytest.fixture()
def postgres(services: dict[str, Any]) -> dict[str, Any]:
    if "postgres" not in services:
        missing("PostgreSQL")
    pg: dict[str, Any] = services["postgres"]
    return pg


@pytest.fixture()
def moto(services: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """moto, with the AWS environment a pipeline would have (endpoint, region, credentials)."""
    if "moto" not in services:
        missing("moto")
    m: dict[str, Any] = services["moto"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", m["endpoint"])
    monkeypatch.setenv("AWS_REGION", m["region"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return m


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory as the current one, with no paved.toml above it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAVED_CONFIG", raising=False)
    monkeypatch.delenv("PAVED_STATE_DIR", raising=False)
    return tmp_path


def vault_put(bao: dict[str, Any], path: str, **data: str) -> None:
    """Writes a KV v2 secret with OpenBao's own CLI (as an operator would)."""
    pairs = [f"{k}={v}" for k, v in data.items()]
    subprocess.run([bao["bin"], "kv", "put", path, *pairs], env={"BAO_ADDR": bao["addr"], "BAO_TOKEN": bao["token"]},
                   check=True, capture_output=True)


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the ``paved`` CLI."""
    return subprocess.run(
        [str(binary("paved")), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


sys.path.insert(0, str(Path(__file__).parent))
