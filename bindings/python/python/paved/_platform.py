"""``Platform`` and ``AsyncPlatform``: the platform ``paved.toml`` describes, as the CLI
assembles it. Keyword arguments mirror the CLI's flags (``--cpu-limit`` is ``cpu_limit=``)."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

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

__all__ = ["Platform", "AsyncPlatform", "Progress", "ProgressCallback", "Config"]

#: A callback that receives each :class:`Progress` report of a call.
ProgressCallback = Callable[[Progress], object]
#: A configuration: ``None`` (discover ``paved.toml`` as the CLI does), a path, or a dict
#: with the content of a ``paved.toml``.
Config = Union[None, str, "os.PathLike[str]", Mapping[str, Any]]
_Path = Union[str, "os.PathLike[str]"]


def _request(
    app: str,
    image: str,
    env: str,
    replicas: int | None,
    team: str | None,
    cpu_request: str | None,
    cpu_limit: str | None,
    memory_request: str | None,
    memory_limit: str | None,
    custom_manifests: Sequence[_Path],
    extra_manifests: Sequence[_Path],
    no_hpa: bool,
    no_pdb: bool,
    no_network_policy: bool,
    no_ingress: bool,
    no_service_monitor: bool,
    secrets: Mapping[str, str] | None,
) -> dict[str, Any]:
    switches = {
        "hpa": no_hpa,
        "pdb": no_pdb,
        "network-policy": no_network_policy,
        "ingress": no_ingress,
        "service-monitor": no_service_monitor,
    }
    return {
        "app": app,
        "image": image,
        "env": env,
        "replicas": replicas,
        "team": team,
        "cpu_request": cpu_request,
        "cpu_limit": cpu_limit,
        "memory_request": memory_request,
        "memory_limit": memory_limit,
        "custom_manifests": [os.fspath(p) for p in custom_manifests],
        "extra_manifests": [os.fspath(p) for p in extra_manifests],
        "disable": [name for name, off in switches.items() if off],
        "secrets": dict(secrets or {}),
    }


def _options(
    target: str | None,
    dry_run: bool = False,
    timeout: float | None = None,
    rollback: bool | None = None,
    force_conflicts: bool | None = None,
    history_max: int | None = None,
) -> dict[str, Any]:
    return {
        "target": target,
        "dry_run": dry_run,
        "timeout": timeout,
        "rollback": rollback,
        "force_conflicts": force_conflicts,
        "history_max": history_max,
    }


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
        replicas: int | None = None,
        team: str | None = None,
        cpu_request: str | None = None,
        cpu_limit: str | None = None,
        memory_request: str | None = None,
        memory_limit: str | None = None,
        custom_manifests: Sequence[_Path] = (),
        extra_manifests: Sequence[_Path] = (),
        no_hpa: bool = False,
        no_pdb: bool = False,
        no_network_policy: bool = False,
        no_ingress: bool = False,
        no_service_monitor: bool = False,
        secrets: Mapping[str, str] | None = None,
        target: str | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
        rollback: bool | None = None,
        force_conflicts: bool | None = None,
        history_max: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DeployResult:
        """Deploys ``image`` as ``app`` to ``env``: validate, render, policy, secrets, apply."""
        request = _request(app, image, env, replicas, team, cpu_request, cpu_limit, memory_request, memory_limit,
                           custom_manifests, extra_manifests, no_hpa, no_pdb, no_network_policy, no_ingress,
                           no_service_monitor, secrets)
        options = _options(target, dry_run, timeout, rollback, force_conflicts, history_max)
        return DeployResult.from_dict(self._core.deploy(request, options, self._cb(progress), False))

    def plan(
        self,
        app: str,
        image: str,
        env: str,
        *,
        replicas: int | None = None,
        team: str | None = None,
        cpu_request: str | None = None,
        cpu_limit: str | None = None,
        memory_request: str | None = None,
        memory_limit: str | None = None,
        custom_manifests: Sequence[_Path] = (),
        extra_manifests: Sequence[_Path] = (),
        no_hpa: bool = False,
        no_pdb: bool = False,
        no_network_policy: bool = False,
        no_ingress: bool = False,
        no_service_monitor: bool = False,
        secrets: Mapping[str, str] | None = None,
        target: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Plan:
        """What :meth:`deploy` would do, with the final objects; writes nothing."""
        request = _request(app, image, env, replicas, team, cpu_request, cpu_limit, memory_request, memory_limit,
                           custom_manifests, extra_manifests, no_hpa, no_pdb, no_network_policy, no_ingress,
                           no_service_monitor, secrets)
        return Plan.from_dict(self._core.plan(request, _options(target), self._cb(progress), False))

    def render(
        self,
        app: str,
        image: str,
        env: str,
        *,
        replicas: int | None = None,
        team: str | None = None,
        cpu_request: str | None = None,
        cpu_limit: str | None = None,
        memory_request: str | None = None,
        memory_limit: str | None = None,
        custom_manifests: Sequence[_Path] = (),
        extra_manifests: Sequence[_Path] = (),
        no_hpa: bool = False,
        no_pdb: bool = False,
        no_network_policy: bool = False,
        no_ingress: bool = False,
        no_service_monitor: bool = False,
        secrets: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """The objects a deploy would apply, as plain dicts (policies applied)."""
        request = _request(app, image, env, replicas, team, cpu_request, cpu_limit, memory_request, memory_limit,
                           custom_manifests, extra_manifests, no_hpa, no_pdb, no_network_policy, no_ingress,
                           no_service_monitor, secrets)
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
        options = _options(target, False, timeout, rollback, force_conflicts, history_max)
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
        replicas: int | None = None,
        team: str | None = None,
        cpu_request: str | None = None,
        cpu_limit: str | None = None,
        memory_request: str | None = None,
        memory_limit: str | None = None,
        custom_manifests: Sequence[_Path] = (),
        extra_manifests: Sequence[_Path] = (),
        no_hpa: bool = False,
        no_pdb: bool = False,
        no_network_policy: bool = False,
        no_ingress: bool = False,
        no_service_monitor: bool = False,
        secrets: Mapping[str, str] | None = None,
        target: str | None = None,
        dry_run: bool = False,
        timeout: float | None = None,
        rollback: bool | None = None,
        force_conflicts: bool | None = None,
        history_max: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DeployResult:
        """Deploys ``image`` as ``app`` to ``env`` (see :meth:`Platform.deploy`)."""
        request = _request(app, image, env, replicas, team, cpu_request, cpu_limit, memory_request, memory_limit,
                           custom_manifests, extra_manifests, no_hpa, no_pdb, no_network_policy, no_ingress,
                           no_service_monitor, secrets)
        options = _options(target, dry_run, timeout, rollback, force_conflicts, history_max)
        return DeployResult.from_dict(await self._core.deploy(request, options, self._cb(progress), True))

    async def plan(
        self,
        app: str,
        image: str,
        env: str,
        *,
        replicas: int | None = None,
        team: str | None = None,
        cpu_request: str | None = None,
        cpu_limit: str | None = None,
        memory_request: str | None = None,
        memory_limit: str | None = None,
        custom_manifests: Sequence[_Path] = (),
        extra_manifests: Sequence[_Path] = (),
        no_hpa: bool = False,
        no_pdb: bool = False,
        no_network_policy: bool = False,
        no_ingress: bool = False,
        no_service_monitor: bool = False,
        secrets: Mapping[str, str] | None = None,
        target: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> Plan:
        """What :meth:`deploy` would do (see :meth:`Platform.plan`)."""
        request = _request(app, image, env, replicas, team, cpu_request, cpu_limit, memory_request, memory_limit,
                           custom_manifests, extra_manifests, no_hpa, no_pdb, no_network_policy, no_ingress,
                           no_service_monitor, secrets)
        return Plan.from_dict(await self._core.plan(request, _options(target), self._cb(progress), True))

    async def render(
        self,
        app: str,
        image: str,
        env: str,
        *,
        replicas: int | None = None,
        team: str | None = None,
        cpu_request: str | None = None,
        cpu_limit: str | None = None,
        memory_request: str | None = None,
        memory_limit: str | None = None,
        custom_manifests: Sequence[_Path] = (),
        extra_manifests: Sequence[_Path] = (),
        no_hpa: bool = False,
        no_pdb: bool = False,
        no_network_policy: bool = False,
        no_ingress: bool = False,
        no_service_monitor: bool = False,
        secrets: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """The objects a deploy would apply (see :meth:`Platform.render`)."""
        request = _request(app, image, env, replicas, team, cpu_request, cpu_limit, memory_request, memory_limit,
                           custom_manifests, extra_manifests, no_hpa, no_pdb, no_network_policy, no_ingress,
                           no_service_monitor, secrets)
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
        options = _options(target, False, timeout, rollback, force_conflicts, history_max)
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
