"""`restrict-service-types`: a Service must not be of type NodePort or LoadBalancer unless the
organisation lists that type in the setting `allowed_types` (default `["ClusterIP"]`).

Built with componentize-py against `crates/paved-policy/wit`, world `plugin`. componentize-py generates the
`wit_world` bindings package at build time; nothing generated lives in this directory.
"""

import json

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports import log
from wit_world.imports.types import Action, Decision, Info, Request, Severity, Violation

NAME = "restrict-service-types"
VERSION = "0.1.0"
DESCRIPTION = "Services are not of type NodePort or LoadBalancer unless the setting `allowed_types` lists that type."

# The types that expose a Service outside the cluster; ClusterIP and ExternalName do not.
RESTRICTED = ("NodePort", "LoadBalancer")
DEFAULT_ALLOWED = ["ClusterIP"]


def allowed_types(settings: str) -> list:
    """The setting `allowed_types` (absent or null: the default); raises ValueError when malformed."""
    parsed = json.loads(settings) if settings.strip() else {}
    if not isinstance(parsed, dict):
        raise ValueError("settings are not a JSON object")
    value = parsed.get("allowed_types")
    if value is None:
        return list(DEFAULT_ALLOWED)
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValueError("setting allowed_types: expected a list of strings")
    return value


def check(request: Request) -> Decision:
    """The violations of one request."""
    allowed = allowed_types(request.settings)
    violations = []
    for index, raw in enumerate(request.objects):
        obj = json.loads(raw)
        if not isinstance(obj, dict) or obj.get("kind") != "Service":
            continue
        spec = obj.get("spec") or {}
        service_type = spec.get("type") or "ClusterIP"  # Kubernetes' default
        if service_type in RESTRICTED and service_type not in allowed:
            name = (obj.get("metadata") or {}).get("name", "?")
            violations.append(
                Violation(
                    code="service-type",
                    message=f"Service {name} is of type {service_type}, which is not allowed (allowed: {', '.join(allowed) or 'none'})",
                    hint="use a ClusterIP Service behind the platform's ingress, or ask the platform team to add "
                    f"{service_type} to the policy's allowed_types",
                    object=index,
                    path="spec.type",
                    severity=Severity.DENY,
                )
            )
    return Decision(violations=violations, mutated=None)


class Policy(exports.Policy):
    """The exported `paved:policy/policy` interface."""

    def metadata(self) -> Info:
        return Info(name=NAME, version=VERSION, description=DESCRIPTION, actions=[Action.DEPLOY, Action.ROLLBACK])

    def evaluate(self, request: Request) -> Decision:
        # An `err` is a plugin failure (the manifest's failure_policy decides), never a denial.
        try:
            decision = check(request)
        except Exception as e:  # noqa: BLE001 -- an uncaught exception would trap instead
            raise Err(f"{NAME}: {e}")
        # At admission (`paved admission serve`, paved:policy@0.2.0) the request says who asks
        # what; at plan time `request.admission` is None.
        context = ""
        if request.admission is not None:
            a = request.admission
            context = f" at admission: {a.operation.name} {a.kind} {a.name} by {a.user_info.username}"
        log.log(log.Level.DEBUG, f"{NAME}: {len(request.objects)} objects, {len(decision.violations)} violations{context}")
        return decision
