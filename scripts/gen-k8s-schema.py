#!/usr/bin/env python3
"""Generates crates/paved-kube/src/schema/k8s.json: the Kubernetes API schema paved merges
overlays by and checks objects against.

It reads the OpenAPI definitions that kubernetes-validate ships (the same ones the tests
validate with), keeps the object kinds listed in KINDS and every type they reach, and writes
for each type its fields (scalar type, nested type, map values, list items), its required
fields and, for lists, the strategic-merge metadata (x-kubernetes-patch-strategy,
x-kubernetes-patch-merge-key, x-kubernetes-list-type, x-kubernetes-list-map-keys).

Usage: .venv/bin/python scripts/gen-k8s-schema.py [--check] [KUBERNETES_VERSION]
With --check, writes nothing and fails when the committed table differs from a fresh one.
"""
import json
import pathlib
import sys

import kubernetes_validate

ARGS = [a for a in sys.argv[1:] if a != "--check"]
CHECK = "--check" in sys.argv[1:]
VERSION = ARGS[0] if ARGS else "1.37.0"
# The built-in kinds paved renders, or that teams bring as extra manifests.
KINDS = [
    ("v1", "Namespace"), ("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "ConfigMap"),
    ("v1", "Secret"), ("v1", "PersistentVolumeClaim"), ("v1", "Pod"), ("v1", "LimitRange"),
    ("v1", "ResourceQuota"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"), ("batch/v1", "CronJob"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"), ("autoscaling/v1", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("networking.k8s.io/v1", "Ingress"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
]
PREFIX = "io.k8s."
# Types that are scalars in JSON.
SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "int-or-string",
    "io.k8s.apimachinery.pkg.api.resource.Quantity": "quantity",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": "string",
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": "string",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": "any",
    "io.k8s.apimachinery.pkg.runtime.RawExtension": "any",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": "any",
}

root = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{VERSION}-local"
defs = json.loads((root / "_definitions.json").read_text())["$defs"]


def short(name):
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def scalar(schema):
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    for t in ("string", "integer", "number", "boolean"):
        if t in types:
            return t
    return None


types, queue = {}, []


def field(schema):
    """The descriptor of one field's value."""
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        if ref in SPECIAL:
            return SPECIAL[ref]
        if ref not in types and ref not in queue:
            queue.append(ref)
        return {"type": short(ref)}
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return field(schema["allOf"][0])
    kind = schema.get("type", [])
    kind = [kind] if isinstance(kind, str) else kind
    if "array" in kind:
        out = {"list": field(schema.get("items", {}))}
        for key, name in (("x-kubernetes-patch-strategy", "strategy"), ("x-kubernetes-patch-merge-key", "merge_key"),
                          ("x-kubernetes-list-type", "list_type"), ("x-kubernetes-list-map-keys", "map_keys")):
            if key in schema:
                out[name] = schema[key].split(",") if name == "strategy" else schema[key]
        return out
    if "object" in kind:
        values = schema.get("additionalProperties")
        return {"map": field(values)} if isinstance(values, dict) else "any"
    return scalar(schema) or "any"


def visit(name):
    schema = defs[name]
    entry = {"fields": {}}
    for prop, sub in schema.get("properties", {}).items():
        if prop == "status":
            entry["fields"][prop] = "any"
            continue
        entry["fields"][prop] = field(sub)
        strategy = sub.get("x-kubernetes-patch-strategy")
        if strategy and "array" not in (sub.get("type") or []) and isinstance(entry["fields"][prop], dict) \
                and "list" not in entry["fields"][prop]:
            entry["fields"][prop]["strategy"] = strategy.split(",")
    if schema.get("required"):
        entry["required"] = schema["required"]
    types[short(name)] = entry


kinds = {}
for api_version, kind in KINDS:
    group, _, version = api_version.rpartition("/")
    name = next(n for n, s in defs.items()
                if {"group": group, "kind": kind, "version": version} in s.get("x-kubernetes-group-version-kind", []))
    kinds[f"{api_version}/{kind}"] = short(name)
    queue.append(name)
while queue:
    visit(queue.pop())

out = pathlib.Path(__file__).resolve().parent.parent / "crates/paved-kube/src/schema/k8s.json"
text = json.dumps({"kubernetes": VERSION, "kinds": kinds, "types": dict(sorted(types.items()))},
                  separators=(",", ":"), sort_keys=False) + "\n"
if CHECK:
    if out.read_text() != text:
        sys.exit(f"{out} is out of date: run .venv/bin/python scripts/gen-k8s-schema.py and review the diff")
    print(f"{out}: up to date ({len(kinds)} kinds, {len(types)} types)")
else:
    out.write_text(text)
    print(f"{out}: {len(kinds)} kinds, {len(types)} types, {len(text)} bytes")
