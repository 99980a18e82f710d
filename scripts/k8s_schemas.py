"""Writes the JSON schemas that `scripts/validate-k8s` checks deploy/k8s/ against, one per kind we ship,
from the Kubernetes OpenAPI spec (api/openapi-spec/swagger.json of the k8s.io/kubernetes Go module,
fetched from the Go module proxy). Run it when a manifest gains a kind or the pinned release moves:

    python scripts/k8s_schemas.py            # writes deploy/k8s/schemas/*.json

Each schema stands alone (every $ref inlined, so validation needs no network) and is strict (objects
take only the fields Kubernetes knows: a misspelt field fails instead of being dropped by the API).
Descriptions are left out: they are most of the spec's size and nothing validates against them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = "v1.34.2"  # the release whose API the manifests are checked against
SCHEMAS = ROOT / "deploy" / "k8s" / "schemas"
# (group, version, kind) of every object under deploy/k8s/
KINDS = [
    ("", "v1", "Service"),  # the core group: apiVersion "v1"
    ("apps", "v1", "Deployment"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ("batch", "v1", "CronJob"),
    ("policy", "v1", "PodDisruptionBudget"),
]
# value types whose OpenAPI form is a bare format the schema language cannot say
SCALARS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "oneOf": [{"type": "string"}, {"type": "integer"}]
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "oneOf": [{"type": "string"}, {"type": "number"}]
    },
}


def swagger(version: str) -> Path:
    """The spec inside the k8s.io/kubernetes module, downloaded into the receptionist cache."""
    cache = Path(os.environ.get("RECEPTIONIST_CACHE", Path.home() / ".cache" / "receptionist"))
    env = {
        **os.environ,
        "GOMODCACHE": str(cache / "gomod"),
        "GOFLAGS": "-modcacherw",
        "GO111MODULE": "on",
    }
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
        env=env, capture_output=True, text=True, check=True, timeout=1800,
    )  # fmt: skip
    return Path(json.loads(out.stdout)["Dir"]) / "api" / "openapi-spec" / "swagger.json"


def standalone(node: Any, definitions: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, list):
        return [standalone(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in SCALARS:
            return SCALARS[name]
        if name in seen:  # a recursive type (none in the kinds above): accept anything below it
            return {}
        return standalone(definitions[name], definitions, (*seen, name))
    schema = {
        key: standalone(value, definitions, seen)
        for key, value in node.items()
        if key != "description" and not key.startswith("x-kubernetes-")
    }
    if "properties" in node:
        schema["properties"] = {
            field: standalone(value, definitions, seen)
            for field, value in node["properties"].items()
        }
        schema.setdefault("additionalProperties", False)
    return schema


def api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def schema_file(group: str, version: str, kind: str) -> Path:
    """Where validate-k8s looks for it: kubeconform names a core kind's group after its version."""
    return SCHEMAS / f"{kind.lower()}-{group or version}-{version}.json"


def schema_for(group: str, version: str, kind: str, definitions: dict[str, Any]) -> dict[str, Any]:
    [name] = [
        name
        for name, d in definitions.items()
        if {"group": group, "version": version, "kind": kind}
        in d.get("x-kubernetes-group-version-kind", [])
    ]
    schema = standalone(definitions[name], definitions, (name,))
    schema["properties"]["apiVersion"] = {"type": "string", "enum": [api_version(group, version)]}
    schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind"})
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--spec", type=Path, help="a swagger.json already on disk (default: fetch it)"
    )
    args = parser.parse_args()
    definitions = json.loads((args.spec or swagger(KUBERNETES)).read_text())["definitions"]
    SCHEMAS.mkdir(parents=True, exist_ok=True)
    for group, version, kind in KINDS:
        path = schema_file(group, version, kind)
        path.write_text(
            json.dumps(schema_for(group, version, kind, definitions), sort_keys=True) + "\n"
        )
        print(f"{path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
