"""Secret stores against real OpenBao and moto: hvac interop both ways, masked values,
versions, asyncio, errors."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
from pathlib import Path
from typing import Any

import hvac
import pytest

import paved

VALUE = "s3cr3t-hunter2-value"


def test_hvac_reads_what_paved_writes_and_the_other_way_round(bao: dict[str, Any], workdir: Path) -> None:
    store = paved.VaultStore()
    client = hvac.Client(url=bao["addr"], token=bao["token"])

    version = store.put("payments/db", {"password": VALUE, "user": paved.Secret("app")})
    assert version >= 1
    read = client.secrets.kv.v2.read_secret_version(path="payments/db", mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"password": VALUE, "user": "app"}
    assert read["data"]["metadata"]["version"] == version

    client.secrets.kv.v2.create_or_update_secret(path="payments/api", secret={"token": "from-hvac"}, mount_point="secret")
    got = store.get("payments/api")
    assert list(got) == ["token"] and got["token"].reveal() == "from-hvac"
    assert sorted(store.list("payments")) == ["api", "db"]

    store.put("payments/db", {"password": "second"})
    assert store.get("payments/db", version=version)["password"].reveal() == VALUE
    versions = store.versions("payments/db")
    assert [v.version for v in versions][-2:] == [version, version + 1]
    assert not versions[-1].deleted

    store.delete("payments/api")
    with pytest.raises(paved.NotFound):
        store.get("payments/api")
    with pytest.raises(paved.NotFound):
        store.get("payments/never-written")


def test_no_secret_value_in_any_repr_exception_or_log(
    bao: dict[str, Any], workdir: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = paved.VaultStore()
    store.put("platform/app", {"password": VALUE})
    secrets = store.get("platform/app")
    secret = secrets["password"]
    shown = [repr(secrets), str(secrets), repr(secret), str(secret), f"{secret}", f"{secret!r}"]
    assert all(VALUE not in s for s in shown), shown
    assert repr(secret) == "Secret('********')"
    assert secret.reveal() == VALUE and secret == paved.Secret(VALUE)
    with pytest.raises(TypeError):
        __import__("pickle").dumps(secret)
    # Errors about a secret never quote it.
    with pytest.raises(paved.PavedError) as e:
        store.put("../escape", {"password": VALUE})
    assert VALUE not in str(e.value) and VALUE not in repr(e.value)
    with pytest.raises(TypeError) as t:
        store.put("platform/app", {"password": 42})  # type: ignore[dict-item]
    assert "42" not in str(t.value)
    # A deploy checking it in Vault (agent mode, the default) shows it nowhere.
    platform = paved.Platform({"vault": {"address": bao["addr"]}}, state_dir=workdir / "s")
    out = platform.deploy(app="app", image="ghcr.io/company/app:v1", env="staging",
                          secrets={"DB_PASSWORD": "vault://secret/platform/app#password"})
    assert VALUE not in repr(out) and VALUE not in str(out.to_dict())
    captured = capfd.readouterr()
    assert VALUE not in captured.out + captured.err
    assert VALUE not in caplog.text


def test_async_vault_reads(bao: dict[str, Any]) -> None:
    sync = paved.VaultStore()
    for i in range(8):
        sync.put(f"many/s{i}", {"v": str(i)})
    store = paved.AsyncVaultStore()

    async def main() -> list[dict[str, paved.Secret]]:
        return list(await asyncio.gather(*(store.get(f"many/s{i % 8}") for i in range(64))))

    results = asyncio.run(main())
    assert [r["v"].reveal() for r in results] == [str(i % 8) for i in range(64)]


def test_vault_errors_by_kind(bao: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_TOKEN", "not-a-token")
    with pytest.raises((paved.Denied, paved.InvalidInput)) as denied:
        paved.VaultStore().get("payments/db")
    assert denied.value.hint
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{port}")
    with pytest.raises(paved.Unavailable) as down:
        paved.VaultStore().get("payments/db")
    assert down.value.kind == "unavailable" and down.value.hint


def test_secrets_manager_on_moto(moto: dict[str, Any]) -> None:
    store = paved.SecretsManagerStore({"aws": {"region": moto["region"]}})
    first = store.put("payments/api", {"token": VALUE, "user": "svc"})
    second = store.put("payments/api", {"token": "rotated", "user": "svc"})
    assert second == first + 1
    assert store.get("payments/api")["token"].reveal() == "rotated"
    assert store.get("payments/api", version=first)["token"].reveal() == VALUE
    versions = store.versions("payments/api")
    assert [v.version for v in versions] == [first, second]
    assert "AWSCURRENT" in versions[-1].stages
    assert store.list("payments/") == ["api"]
    # boto3 sees the same secret.
    import boto3

    sm = boto3.client("secretsmanager", endpoint_url=moto["endpoint"], region_name=moto["region"])
    assert '"rotated"' in sm.get_secret_value(SecretId="payments/api")["SecretString"]
    store.delete("payments/api")
    with pytest.raises(paved.NotFound):
        store.get("payments/api")

    async def main() -> dict[str, paved.Secret]:
        a = paved.AsyncSecretsManagerStore({"aws": {"region": moto["region"]}})
        await a.put("payments/async", {"k": "v"})
        return await a.get("payments/async")

    assert asyncio.run(main())["k"].reveal() == "v"


def test_an_aws_endpoint_that_never_answers_is_a_timeout(moto: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    store = paved.SecretsManagerStore({"aws": {"region": "us-east-1", "timeout_seconds": 1, "max_attempts": 1}})
    try:
        with pytest.raises(paved.Timeout) as e:
            store.get("payments/api")
    finally:
        silent.close()
    assert e.value.kind == "timeout" and isinstance(e.value, TimeoutError)


def test_bao_cli_sees_paved_writes(bao: dict[str, Any]) -> None:
    paved.VaultStore().put("cli/check", {"k": "v"})
    out = subprocess.run([bao["bin"], "kv", "get", "-format=json", "secret/cli/check"], capture_output=True, text=True,
                         env={"BAO_ADDR": bao["addr"], "BAO_TOKEN": bao["token"], "PATH": "/usr/bin:/bin"}, check=True)
    assert '"k": "v"' in out.stdout
