"""Secret stores: Vault / OpenBao KV v2 and AWS Secrets Manager, synchronous and asyncio.

Addresses and credentials come from ``paved.toml`` and the environment (``VAULT_ADDR``,
``VAULT_TOKEN``, AppRole or Kubernetes login; the AWS credential chain), as the CLI takes them.
Values are :class:`Secret` objects: masked in ``repr``/``str``, ``.reveal()`` gives the value.
"""

from __future__ import annotations

import builtins
import os
from typing import Any, Mapping, Union

from . import _paved
from ._paved import Secret
from ._results import SecretVersion

__all__ = ["Secret", "VaultStore", "AsyncVaultStore", "SecretsManagerStore", "AsyncSecretsManagerStore"]

_Config = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]
_Value = Union[str, Secret]


def _config(config: _Config) -> Any:
    return None if config is None else dict(config) if isinstance(config, Mapping) else os.fspath(config)


class _Store:
    _kind = ""
    _core: _paved.StoreCore

    def __init__(self, config: _Config = None) -> None:
        self._core = _paved.StoreCore(self._kind, _config(config), None)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Sync(_Store):
    def get(self, path: str, *, version: int | None = None) -> dict[str, Secret]:
        """The secret at ``path`` (its latest version, or ``version``), key by key."""
        result: dict[str, Secret] = self._core.get(path, version, False)
        return result

    def put(self, path: str, data: Mapping[str, _Value]) -> int:
        """Writes ``data`` as a new version of the secret at ``path``; returns its number."""
        result: int = self._core.put(path, dict(data), False)
        return result

    def list(self, prefix: str = "") -> builtins.list[str]:
        """The names under ``prefix`` (folders end with ``/``)."""
        result: builtins.list[str] = self._core.list(prefix, False)
        return result

    def delete(self, path: str) -> None:
        """Deletes the secret at ``path``."""
        self._core.delete(path, False)

    def versions(self, path: str) -> builtins.list[SecretVersion]:
        """The versions of the secret at ``path``, oldest first (values are not read)."""
        return [SecretVersion.from_dict(v) for v in self._core.versions(path, False)]


class _Async(_Store):
    async def get(self, path: str, *, version: int | None = None) -> dict[str, Secret]:
        """The secret at ``path`` (its latest version, or ``version``), key by key."""
        result: dict[str, Secret] = await self._core.get(path, version, True)
        return result

    async def put(self, path: str, data: Mapping[str, _Value]) -> int:
        """Writes ``data`` as a new version of the secret at ``path``; returns its number."""
        result: int = await self._core.put(path, dict(data), True)
        return result

    async def list(self, prefix: str = "") -> builtins.list[str]:
        """The names under ``prefix`` (folders end with ``/``)."""
        result: builtins.list[str] = await self._core.list(prefix, True)
        return result

    async def delete(self, path: str) -> None:
        """Deletes the secret at ``path``."""
        await self._core.delete(path, True)

    async def versions(self, path: str) -> builtins.list[SecretVersion]:
        """The versions of the secret at ``path``, oldest first (values are not read)."""
        return [SecretVersion.from_dict(v) for v in await self._core.versions(path, True)]


class VaultStore(_Sync):
    """Vault / OpenBao KV v2 (``[vault]`` of paved.toml over ``VAULT_ADDR``, ``VAULT_TOKEN``, …).

    Paths are relative to the mount (default ``secret``): what ``bao kv get secret/payments/db``
    shows is ``get("payments/db")``.
    """

    _kind = "vault"

    def __init__(self, config: _Config = None, *, mount: str | None = None) -> None:
        self._core = _paved.StoreCore(self._kind, _config(config), mount)


class AsyncVaultStore(_Async):
    """:class:`VaultStore` with awaitable calls."""

    _kind = "vault"

    def __init__(self, config: _Config = None, *, mount: str | None = None) -> None:
        self._core = _paved.StoreCore(self._kind, _config(config), mount)


class SecretsManagerStore(_Sync):
    """AWS Secrets Manager (``[aws]`` of paved.toml over the standard credential chain);
    each secret is a JSON object of keys."""

    _kind = "aws-sm"


class AsyncSecretsManagerStore(_Async):
    """:class:`SecretsManagerStore` with awaitable calls."""

    _kind = "aws-sm"
