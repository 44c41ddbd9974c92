#!/usr/bin/env python3
"""Turns CustomResourceDefinition files into the JSON Schemas `validate-crds.py` checks against.

    python3 k8s/crd-schemas/extract.py CRD.yaml... > /dev/null   (writes k8s/crd-schemas/*.json)

For every served version of every CRD given, writes `<kind>-<group>-<version>.json` beside this
file: the version's openAPIV3Schema as a JSON Schema (draft 2020-12), made to answer like the API
server does with `kubectl apply` (field validation "Strict"):

  * an object that lists `properties` and says nothing of `additionalProperties` refuses unknown
    fields, unless it carries `x-kubernetes-preserve-unknown-fields: true` (the API server prunes
    or, with strict field validation, refuses them). Value validations inside allOf/anyOf/oneOf/not
    are left open, as the API server reads them;
  * `x-kubernetes-int-or-string: true` accepts an integer or a string; `nullable: true` accepts null;
  * `apiVersion` and `kind` must be exactly this CRD's; `metadata` must have a DNS-1123 name and
    string labels and annotations;
  * descriptions are dropped (they are most of a CRD's size).

CEL rules (`x-kubernetes-validations`) are not evaluated. Where the CRDs came from is in
README.md beside this file; refresh them by running this on the new release's CRD files.
"""

import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
COMBINATORS = ("allOf", "anyOf", "oneOf", "not")

METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {
            "type": "string",
            "maxLength": 253,
            "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        },
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def convert(node, structural=True):
    """Returns the JSON Schema for one openAPIV3Schema node."""
    if isinstance(node, list):
        return [convert(item, structural) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("description", "example", "externalDocs"):
            continue
        if key in ("x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields",
                   "x-kubernetes-validations", "x-kubernetes-list-type",
                   "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
                   "x-kubernetes-embedded-resource", "nullable", "format"):
            continue
        if key == "properties":
            out[key] = {name: convert(child, structural) for name, child in value.items()}
        elif key in COMBINATORS:
            out[key] = convert(value, structural=False)
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = convert(value, structural)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", []).extend([{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (structural and "properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def main(paths):
    written = []
    for path in paths:
        with open(path) as handle:
            for document in yaml.safe_load_all(handle):
                if not document or document.get("kind") != "CustomResourceDefinition":
                    continue
                spec = document["spec"]
                group, kind = spec["group"], spec["names"]["kind"]
                for version in spec["versions"]:
                    if not version.get("served", False):
                        continue
                    schema = convert(version["schema"]["openAPIV3Schema"])
                    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
                    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                    properties = schema.setdefault("properties", {})
                    properties["apiVersion"] = {"const": f"{group}/{version['name']}"}
                    properties["kind"] = {"const": kind}
                    properties["metadata"] = METADATA
                    properties.pop("status", None)
                    name = f"{kind.lower()}-{group}-{version['name']}.json"
                    with open(os.path.join(HERE, name), "w") as out:
                        json.dump(schema, out, sort_keys=True, indent=1)
                        out.write("\n")
                    written.append(name)
    for name in written:
        print(name)


if __name__ == "__main__":
    main(sys.argv[1:])
