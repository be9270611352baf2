"""paved: golden-path deploys, secrets, self-service databases, policy and DORA metrics.

The Python face of the paved SDK. :class:`Platform` deploys as ``paved deploy`` does (and
:class:`AsyncPlatform` the same as awaitables); :class:`VaultStore` and
:class:`SecretsManagerStore` read and write secrets; :class:`Ledger` answers DORA and adoption
questions; :class:`PolicySet` checks objects against policy plugins. Errors are
:class:`PavedError` subclasses with ``.kind`` and ``.hint``.
"""

from __future__ import annotations

from . import errors
from ._paved import Ledger, PolicySet, Progress, Secret, __version__
from ._platform import AsyncPlatform, DeployOptions, Platform, RolloutOptions, TargetOptions
from ._results import (
    DatabaseResult,
    DatabaseStatus,
    DeployResult,
    DestroyResult,
    Listing,
    Plan,
    Release,
    SecretVersion,
    Status,
)
from ._stores import AsyncSecretsManagerStore, AsyncVaultStore, SecretsManagerStore, VaultStore
from .errors import (
    Conflict,
    Denied,
    InternalError,
    InvalidInput,
    NotFound,
    PavedError,
    PolicyDenied,
    Timeout,
    Unavailable,
)

__all__ = [
    "__version__",
    "errors",
    "Platform",
    "AsyncPlatform",
    "DeployOptions",
    "RolloutOptions",
    "TargetOptions",
    "Progress",
    "DeployResult",
    "Plan",
    "Release",
    "Status",
    "DestroyResult",
    "Listing",
    "DatabaseResult",
    "DatabaseStatus",
    "Secret",
    "SecretVersion",
    "VaultStore",
    "AsyncVaultStore",
    "SecretsManagerStore",
    "AsyncSecretsManagerStore",
    "Ledger",
    "PolicySet",
    "PavedError",
    "InvalidInput",
    "NotFound",
    "Conflict",
    "Denied",
    "PolicyDenied",
    "Unavailable",
    "Timeout",
    "InternalError",
]
