"""The results of paved's calls: frozen objects with the main fields as attributes and
``to_dict()`` giving the whole document (the same keys as the CLI's ``--output json``)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "Release",
    "DeployResult",
    "Plan",
    "Status",
    "DestroyResult",
    "Listing",
    "DatabaseResult",
    "DatabaseStatus",
    "SecretVersion",
]


@dataclass(frozen=True)
class _Document:
    _doc: Mapping[str, Any] = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The whole result as plain data (a deep copy)."""
        return copy.deepcopy(dict(self._doc))


def _hatch(h: Mapping[str, Any]) -> str:
    value = h.get("value")
    return f"{h['name']}={value}" if value is not None else str(h["name"])


@dataclass(frozen=True)
class Release(_Document):
    """One revision of an app in an environment, as its deploy target records it."""

    revision: int = 0
    app: str = ""
    environment: str = ""
    team: str = ""
    image: str = ""
    replicas: int = 0
    deployed_at: str = ""
    deployed_by: str = ""
    url: str | None = None
    namespace: str = ""
    escape_hatches: tuple[str, ...] = ()
    cause: str = "deploy"
    rollback_to: int | None = None
    state: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Release:
        """A release from its document."""
        cause = d.get("cause") or {}
        return cls(
            _doc=d,
            revision=d["revision"],
            app=d["app"],
            environment=d["environment"],
            team=d.get("team", ""),
            image=d["image"],
            replicas=d.get("replicas", 0),
            deployed_at=d.get("deployed_at", ""),
            deployed_by=d.get("deployed_by", ""),
            url=d.get("url"),
            namespace=d.get("namespace", ""),
            escape_hatches=tuple(_hatch(h) for h in d.get("escape_hatches", [])),
            cause=cause.get("type", "deploy"),
            rollback_to=cause.get("to"),
            state=d.get("state"),
        )


@dataclass(frozen=True)
class DeployResult(_Document):
    """What a deploy (or a rollback, or a dry run) did."""

    app: str = ""
    environment: str = ""
    revision: int = 0
    image: str = ""
    url: str | None = None
    changed: bool = False
    restored: bool = False
    dry_run: bool = False
    location: str = ""
    release: Release | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeployResult:
        """A result from its document."""
        return cls(**_deploy_fields(d))


def _deploy_fields(d: Mapping[str, Any]) -> dict[str, Any]:
    record = d["record"]
    violations = (d.get("policy") or {}).get("violations", [])
    return dict(
        _doc=d,
        app=record["app"],
        environment=record["environment"],
        revision=record["revision"],
        image=record["image"],
        url=record.get("url"),
        changed=d["changed"],
        restored=d.get("restored", False),
        dry_run=d.get("dry_run", False),
        location=d["location"],
        release=Release.from_dict(record),
        warnings=tuple(
            f"[{v.get('policy')}] {v.get('code')}: {v.get('message')}"
            for v in violations
            if v.get("severity") == "warn"
        ),
    )


@dataclass(frozen=True)
class Plan(DeployResult):
    """What a deploy would do: the revision it would write and the final objects."""

    target: str = ""
    objects: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """A plan from its document."""
        return cls(**_deploy_fields(d), target=d["target"], objects=tuple(d["objects"]))


@dataclass(frozen=True)
class Status(_Document):
    """The current revision of an app in an environment and whether the target still runs it."""

    app: str = ""
    environment: str = ""
    revision: int = 0
    image: str = ""
    url: str | None = None
    in_sync: bool = False
    detail: str = ""
    location: str = ""
    release: Release | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Status:
        """A status from its document."""
        current = d["current"]
        return cls(
            _doc=d,
            app=current["app"],
            environment=current["environment"],
            revision=current["revision"],
            image=current["image"],
            url=current.get("url"),
            in_sync=d["in_sync"],
            detail=d["detail"],
            location=d["location"],
            release=Release.from_dict(current),
        )


@dataclass(frozen=True)
class DestroyResult(_Document):
    """What a destroy removed."""

    app: str = ""
    environment: str = ""
    location: str = ""
    deleted: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DestroyResult:
        """A result from its document."""
        return cls(
            _doc=d, app=d["app"], environment=d["environment"], location=d["location"], deleted=tuple(d["deleted"])
        )


@dataclass(frozen=True)
class Listing(_Document):
    """Every app's current revision, and environments whose target could not be listed."""

    apps: tuple[Status, ...] = ()
    unavailable: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Listing:
        """A listing from its document."""
        return cls(
            _doc=d,
            apps=tuple(Status.from_dict(s) for s in d["apps"]),
            unavailable=tuple(d.get("unavailable", [])),
        )


@dataclass(frozen=True)
class DatabaseResult(_Document):
    """A provisioned database, as the original design's API answers:
    ``status``, ``endpoint`` and ``vault_path`` (where the connection info is stored)."""

    status: str = ""
    endpoint: str | None = None
    vault_path: str | None = None
    database: str = ""
    username: str | None = None
    credentials_path: str | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatabaseResult:
        """A result from its document."""
        return cls(
            _doc=d,
            status=d["status"],
            endpoint=d.get("endpoint"),
            vault_path=d.get("vault_path"),
            database=d["database"],
            username=d.get("username"),
            credentials_path=d.get("credentials_path"),
            warnings=tuple(d.get("warnings", [])),
        )


@dataclass(frozen=True)
class DatabaseStatus(_Document):
    """A database's state and where to connect (never a password)."""

    state: str = ""
    database: str = ""
    host: str | None = None
    port: int | None = None
    username: str | None = None
    credentials_path: str | None = None
    connection_info_path: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DatabaseStatus:
        """A status from its document."""
        endpoint = d.get("endpoint")
        return cls(
            _doc=d,
            state=d["state"],
            database=d["database"],
            host=endpoint[0] if endpoint else None,
            port=endpoint[1] if endpoint else None,
            username=d.get("username"),
            credentials_path=d.get("credentials_path"),
            connection_info_path=d.get("connection_info_path"),
        )


@dataclass(frozen=True)
class SecretVersion(_Document):
    """One version of a secret: its number, when it was written, whether it is deleted."""

    version: int | None = None
    created: str | None = None
    deleted: bool = False
    destroyed: bool = False
    stages: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SecretVersion:
        """A version from its document."""
        return cls(
            _doc=d,
            version=d.get("version"),
            created=d.get("created"),
            deleted=d.get("deleted", False),
            destroyed=d.get("destroyed", False),
            stages=tuple(d.get("stages", [])),
        )
