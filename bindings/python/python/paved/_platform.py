"""``Platform`` and ``AsyncPlatform``: the platform ``paved.toml`` describes, as the CLI
assembles it. Keyword arguments mirror the CLI's flags (``--cpu-limit`` is ``cpu_limit=``)."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
import sys
from typing import Any, Callable, Mapping, Sequence, TypedDict, Union

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Unpack

from . import _paved
from ._paved import Progress
from ._results import (
    DatabaseResult,
    DatabaseStatus,
    DeployResult,
    DestroyResult,
    Listing,
    Plan,
    Release,
    Status,
)

__all__ = [
    "Platform",
    "AsyncPlatform",
    "Progress",
    "ProgressCallback",
    "Config",
    "DeployOptions",
    "TargetOptions",
    "RolloutOptions",
    "PlanOptions",
    "DeployAndRolloutOptions",
]

#: A callback that receives each :class:`Progress` report of a call.
ProgressCallback = Callable[[Progress], object]
#: A configuration: ``None`` (discover ``paved.toml`` as the CLI does), a path, or a dict
#: with the content of a ``paved.toml``.
Config = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]
_Path = Union[str, "os.PathLike[str]"]


class DeployOptions(TypedDict, total=False):
    """The request's keyword arguments of ``deploy``, ``plan`` and ``render``: the CLI's flags
    (``--cpu-limit 2000m`` is ``cpu_limit="2000m"``, ``--no-hpa`` is ``no_hpa=True``)."""

    replicas: int | None
    team: str | None
    cpu_request: str | None
    cpu_limit: str | None
    memory_request: str | None
    memory_limit: str | None
    custom_manifests: Sequence[_Path]
    extra_manifests: Sequence[_Path]
    no_hpa: bool
    no_pdb: bool
    no_network_policy: bool
    no_ingress: bool
    no_service_monitor: bool
    no_dashboard: bool
    no_alerts: bool
    no_tracing: bool
    no_mesh: bool
    secrets: Mapping[str, str] | None


class TargetOptions(TypedDict, total=False):
    """``target="kube"`` or ``"gitops"``: the deploy target instead of the environment's."""

    target: str | None


class RolloutOptions(TargetOptions, total=False):
    """How a change rolls out on the kube target (refused on an environment of another target):
    ``timeout`` in seconds, ``rollback=False`` leaves a failed rollout in place,
    ``force_conflicts``, ``history_max``."""

    timeout: float | None
    rollback: bool | None
    force_conflicts: bool | None
    history_max: int | None


class PlanOptions(DeployOptions, TargetOptions, total=False):
    """The keyword arguments of ``plan``."""


class DeployAndRolloutOptions(DeployOptions, RolloutOptions, total=False):
    """The keyword arguments of ``deploy``."""


_SWITCHES = {
    "no_hpa": "hpa",
    "no_pdb": "pdb",
    "no_network_policy": "network-policy",
    "no_ingress": "ingress",
    "no_service_monitor": "service-monitor",
    "no_dashboard": "dashboard",
    "no_alerts": "alerts",
    "no_tracing": "tracing",
    "no_mesh": "mesh",
}
_REQUEST_KEYS = frozenset(DeployOptions.__annotations__)
_ROLLOUT_KEYS = frozenset(RolloutOptions.__annotations__) | {"target"}


def _split(
    call: str, app: str, image: str, env: str, options: Mapping[str, Any], allowed: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request and the call's options of keyword arguments; an unknown one is a TypeError,
    as for any Python function."""
    unknown = sorted(set(options) - _REQUEST_KEYS - allowed)
    if unknown:
        raise TypeError(f"{call}() got an unexpected keyword argument {unknown[0]!r}")
    request: dict[str, Any] = {"app": app, "image": image, "env": env}
    for key in ("replicas", "team", "cpu_request", "cpu_limit", "memory_request", "memory_limit"):
        request[key] = options.get(key)
    for key in ("custom_manifests", "extra_manifests"):
        request[key] = [os.fspath(p) for p in options.get(key) or ()]
    request["disable"] = [name for flag, name in _SWITCHES.items() if options.get(flag)]
    request["secrets"] = dict(options.get("secrets") or {})
    return request, {key: options.get(key) for key in allowed}


def _options(target: str | None, **rollout: Any) -> dict[str, Any]:
    return {"target": target, **rollout}


def _database(
    team: str, service: str, engine: str, env: str, size: str, server: str | None, backend: str | None
) -> dict[str, Any]:
    return {
        "team": team,
        "service": service,
        "engine": engine,
        "env": env,
        "size": size,
        "server": server,
        "backend": backend,
    }


class _Base:
    _core: _paved.Core
    _progress: ProgressCallback | None

    def __init__(
        self,
        config: Config = None,
        state_dir: _Path = ".paved",
        *,
        progress: ProgressCallback | None = None,
        actor: str | None = None,
        kubeconfig: _Path | None = None,
        context: str | None = None,
    ) -> None:
        self._core = _paved.Core(
            None if config is None else dict(config) if isinstance(config, Mapping) else os.fspath(config),
            os.fspath(state_dir),
            actor,
            None if kubeconfig is None else os.fspath(kubeconfig),
            context,
        )
        self._progress = progress

    @property
    def config_path(self) -> Path | None:
        """The ``paved.toml`` in use, if the configuration came from a file."""
        return self._core.config_path

    @property
    def state_dir(self) -> Path:
        """Where the GitOps directory and the event ledger live."""
        return self._core.state_dir

    def __repr__(self) -> str:
        return f"{type(self).__name__}(config={self.config_path!r}, state_dir={self.state_dir!r})"

    def _cb(self, progress: ProgressCallback | None) -> ProgressCallback | None:
        return progress if progress is not None else self._progress


class Platform(_Base):
    """The platform: deploy, plan, render, status, history, rollback, destroy, databases.

    Every call blocks until it is done and releases the interpreter meanwhile, so other
    threads run. Ctrl-C during a deploy to a cluster restores the previous release, as the
    CLI does, and then raises ``KeyboardInterrupt`` with what was restored as a note.

    >>> platform = paved.Platform(state_dir=".paved")           # doctest: +SKIP
    >>> out = platform.deploy(app="my-service", image="ghcr.io/company/my-service:v1.2.3",
    ...                       env="production", replicas=3)     # doctest: +SKIP
    >>> out.revision, out.url                                   # doctest: +SKIP
    (1, 'https://my-service.production.example.com')
    """

    def deploy(
        self,
        app: str,
        image: str,
        env: str,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        **options: Unpack[DeployAndRolloutOptions],
    ) -> DeployResult:
        """Deploys ``image`` as ``app`` to ``env``: validate, render, policy, secrets, apply.
        Keyword arguments: :class:`DeployOptions` (the CLI's flags) and :class:`RolloutOptions`."""
        request, opts = _split("deploy", app, image, env, options, _ROLLOUT_KEYS)
        opts["dry_run"] = dry_run
        return DeployResult.from_dict(self._core.deploy(request, opts, self._cb(progress), False))

    def plan(
        self,
        app: str,
        image: str,
        env: str,
        *,
        progress: ProgressCallback | None = None,
        **options: Unpack[PlanOptions],
    ) -> Plan:
        """What :meth:`deploy` would do, with the final objects; writes nothing."""
        request, opts = _split("plan", app, image, env, options, frozenset({"target"}))
        return Plan.from_dict(self._core.plan(request, opts, self._cb(progress), False))

    def render(
        self,
        app: str,
        image: str,
        env: str,
        *,
        progress: ProgressCallback | None = None,
        **options: Unpack[DeployOptions],
    ) -> builtins.list[dict[str, Any]]:
        """The objects a deploy would apply, as plain dicts (policies applied)."""
        request, _ = _split("render", app, image, env, options, frozenset())
        result: builtins.list[dict[str, Any]] = self._core.render(request, self._cb(progress), False)
        return result

    def status(self, app: str, env: str, *, target: str | None = None) -> Status:
        """The current revision of ``app`` in ``env`` and whether the target still runs it."""
        return Status.from_dict(self._core.status(app, env, _options(target), False))

    def history(self, app: str, env: str, *, max: int | None = None, target: str | None = None) -> builtins.list[Release]:
        """Every kept revision of ``app`` in ``env``, newest first."""
        return [Release.from_dict(r) for r in self._core.history(app, env, max, _options(target), False)]

    def rollback(
        self,
        app: str,
        env: str,
        *,
        to: int | None = None,
        target: str | None = None,
        timeout: float | None = None,
        rollback: bool | None = None,
        force_conflicts: bool | None = None,
        history_max: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DeployResult:
        """Restores the objects of revision ``to`` (default: the previous one) as a new revision."""
        options = _options(target, timeout=timeout, rollback=rollback, force_conflicts=force_conflicts, history_max=history_max)
        return DeployResult.from_dict(self._core.rollback(app, env, to, options, self._cb(progress), False))

    def destroy(
        self, app: str, env: str, *, target: str | None = None, progress: ProgressCallback | None = None
    ) -> DestroyResult:
        """Removes ``app`` from ``env``."""
        return DestroyResult.from_dict(self._core.destroy(app, env, _options(target), self._cb(progress), False))

    def list(self, env: str | None = None, *, target: str | None = None) -> Listing:
        """Every app's current revision, in one environment or all."""
        return Listing.from_dict(self._core.list(env, _options(target), False))

    def settle(self) -> builtins.list[str]:
        """Waits for the deploy targets' background work (restoring the previous release after an
        interrupted deploy) and returns what they report."""
        result: builtins.list[str] = self._core.settle(False)
        return result

    def provision_database(
        self,
        team: str,
        service: str,
        engine: str,
        env: str,
        *,
        size: str = "small",
        server: str | None = None,
        backend: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> DatabaseResult:
        """Provisions a database for ``service``; its connection info goes to
        ``database/{team}/{service}/{env}`` in the secret store."""
        request = _database(team, service, engine, env, size, server, backend)
        return DatabaseResult.from_dict(self._core.provision_database(request, self._cb(progress), False))

    def database_status(
        self,
        team: str,
        service: str,
        engine: str,
        env: str,
        *,
        server: str | None = None,
        backend: str | None = None,
    ) -> DatabaseStatus:
        """A database's state and where to connect."""
        request = _database(team, service, engine, env, "small", server, backend)
        return DatabaseStatus.from_dict(self._core.database_status(request, False))

    def deprovision_database(
        self,
        team: str,
        service: str,
        engine: str,
        env: str,
        *,
        drop_data: bool = False,
        force: bool = False,
        server: str | None = None,
        backend: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> builtins.list[str]:
        """Removes a database's access (``drop_data``: the data too); returns warnings."""
        request = _database(team, service, engine, env, "small", server, backend)
        result = self._core.deprovision_database(request, drop_data, force, self._cb(progress), False)
        return list(result["warnings"])



class AsyncPlatform(_Base):
    """:class:`Platform` with every call an awaitable, for asyncio.

    Calls run on paved's runtime and make progress concurrently: fifty ``deploy`` calls under
    ``asyncio.gather`` run together. Cancelling a call drops its work; a deploy to a cluster
    is then undone by the target, as after Ctrl-C on the command line.
    """

    async def deploy(
        self,
        app: str,
        image: str,
        env: str,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        **options: Unpack[DeployAndRolloutOptions],
    ) -> DeployResult:
        """See :meth:`Platform.deploy`."""
        request, opts = _split("deploy", app, image, env, options, _ROLLOUT_KEYS)
        opts["dry_run"] = dry_run
        return DeployResult.from_dict(await self._core.deploy(request, opts, self._cb(progress), True))

    async def plan(
        self,
        app: str,
        image: str,
        env: str,
        *,
        progress: ProgressCallback | None = None,
        **options: Unpack[PlanOptions],
    ) -> Plan:
        """See :meth:`Platform.plan`."""
        request, opts = _split("plan", app, image, env, options, frozenset({"target"}))
        return Plan.from_dict(await self._core.plan(request, opts, self._cb(progress), True))

    async def render(
        self,
        app: str,
        image: str,
        env: str,
        *,
        progress: ProgressCallback | None = None,
        **options: Unpack[DeployOptions],
    ) -> builtins.list[dict[str, Any]]:
        """See :meth:`Platform.render`."""
        request, _ = _split("render", app, image, env, options, frozenset())
        result: builtins.list[dict[str, Any]] = await self._core.render(request, self._cb(progress), True)
        return result

    async def status(self, app: str, env: str, *, target: str | None = None) -> Status:
        """See :meth:`Platform.status`."""
        return Status.from_dict(await self._core.status(app, env, _options(target), True))

    async def history(
        self, app: str, env: str, *, max: int | None = None, target: str | None = None
    ) -> builtins.list[Release]:
        """See :meth:`Platform.history`."""
        return [Release.from_dict(r) for r in await self._core.history(app, env, max, _options(target), True)]

    async def rollback(
        self,
        app: str,
        env: str,
        *,
        to: int | None = None,
        target: str | None = None,
        timeout: float | None = None,
        rollback: bool | None = None,
        force_conflicts: bool | None = None,
        history_max: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DeployResult:
        """See :meth:`Platform.rollback`."""
        options = _options(target, timeout=timeout, rollback=rollback, force_conflicts=force_conflicts, history_max=history_max)
        return DeployResult.from_dict(await self._core.rollback(app, env, to, options, self._cb(progress), True))

    async def destroy(
        self, app: str, env: str, *, target: str | None = None, progress: ProgressCallback | None = None
    ) -> DestroyResult:
        """See :meth:`Platform.destroy`."""
        return DestroyResult.from_dict(await self._core.destroy(app, env, _options(target), self._cb(progress), True))

    async def list(self, env: str | None = None, *, target: str | None = None) -> Listing:
        """See :meth:`Platform.list`."""
        return Listing.from_dict(await self._core.list(env, _options(target), True))

    async def settle(self) -> builtins.list[str]:
        """Waits for the deploy targets' background work (restoring the previous release after a
        cancelled deploy) and returns what they report: await it before the loop ends when a
        deploy to a cluster may have been cancelled."""
        result: builtins.list[str] = await self._core.settle(True)
        return result

    async def provision_database(
        self,
        team: str,
        service: str,
        engine: str,
        env: str,
        *,
        size: str = "small",
        server: str | None = None,
        backend: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> DatabaseResult:
        """See :meth:`Platform.provision_database`."""
        request = _database(team, service, engine, env, size, server, backend)
        return DatabaseResult.from_dict(await self._core.provision_database(request, self._cb(progress), True))

    async def database_status(
        self,
        team: str,
        service: str,
        engine: str,
        env: str,
        *,
        server: str | None = None,
        backend: str | None = None,
    ) -> DatabaseStatus:
        """See :meth:`Platform.database_status`."""
        request = _database(team, service, engine, env, "small", server, backend)
        return DatabaseStatus.from_dict(await self._core.database_status(request, True))

    async def deprovision_database(
        self,
        team: str,
        service: str,
        engine: str,
        env: str,
        *,
        drop_data: bool = False,
        force: bool = False,
        server: str | None = None,
        backend: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> builtins.list[str]:
        """See :meth:`Platform.deprovision_database`."""
        request = _database(team, service, engine, env, "small", server, backend)
        result = await self._core.deprovision_database(request, drop_data, force, self._cb(progress), True)
        return list(result["warnings"])
