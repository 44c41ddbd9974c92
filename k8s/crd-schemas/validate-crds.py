#!/usr/bin/env python3
"""Validates custom resources against the CRD schemas beside this file (see extract.py).

    validate-crds.py [--require] FILE...      ("-" reads standard input)

Each YAML document whose apiVersion and kind match a `<kind>-<group>-<version>.json` here is
checked against it; every other document is left to kubernetes-validate. With --require, a
document of a custom-resource group this directory knows (keda.sh, monitoring.coreos.com,
kafka.strimzi.io) but a kind or version it has no schema for is an error, not a skip.
Prints one line per custom resource; exits 1 if any failed.
"""

import json
import os
import sys

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def load_schemas():
    schemas = {}
    for name in sorted(os.listdir(HERE)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(HERE, name)) as handle:
            schema = json.load(handle)
        key = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
        schemas[key] = jsonschema.Draft202012Validator(schema)
    return schemas


def documents(path):
    text = sys.stdin.read() if path == "-" else open(path).read()
    for document in yaml.safe_load_all(text):
        if document:
            yield document


def main(arguments):
    require = "--require" in arguments
    paths = [argument for argument in arguments if argument != "--require"]
    schemas = load_schemas()
    groups = {api_version.split("/")[0] for api_version, _ in schemas}
    failed = 0
    for path in paths:
        for document in documents(path):
            api_version, kind = document.get("apiVersion", ""), document.get("kind", "")
            name = f"{kind.lower()}/{document.get('metadata', {}).get('name', '?')}"
            validator = schemas.get((api_version, kind))
            if validator is None:
                if require and api_version.split("/")[0] in groups:
                    print(f"ERROR {path}: no schema for {kind} {api_version} (known: "
                          + ", ".join(f"{k} {a}" for a, k in sorted(schemas)) + ")")
                    failed += 1
                continue
            errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
            if errors:
                failed += 1
                for error in errors:
                    where = ".".join(str(part) for part in error.path) or "(root)"
                    print(f"ERROR {path}: {name} ({api_version}): {where}: {error.message}")
            else:
                print(f"INFO {path}: {name} passed against the {kind} {api_version} CRD schema")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
