#!/usr/bin/env bash
# The API against its own contract: schemathesis runs every check (`--checks all`) on every
# operation of a running Herald's /openapi.json: responses match their schemas (error `details`
# included), schema-valid requests are accepted and invalid ones refused, undeclared methods get
# 405. The one rule JSON Schema cannot state is configured in ops/contract/schemathesis.toml.
#
#   scripts/check-contract.sh API_URL API_KEY
#
# `make test` runs it against the system the dashboards check starts; against `make run`'s:
#   scripts/check-contract.sh http://127.0.0.1:8080 "$(cat .herald-dev-key)"   (or your key)
#
# CONTRACT_MAX_EXAMPLES (default 40) bounds the cases per operation; CONTRACT_SEED fixes
# hypothesis's seed (default: a fixed one, so that a failure is reproduced by the next run; set it
# empty for a fresh one each run).
set -euo pipefail
cd "$(dirname "$0")/.."
api_url=${1:?usage: $0 API_URL API_KEY}
api_key=${2:?usage: $0 API_URL API_KEY}

scripts/tools.sh install >/dev/null
eval "$(scripts/tools.sh env)"

seed_arguments=()
seed=${CONTRACT_SEED-20261205}
[ -z "$seed" ] || seed_arguments=(--seed "$seed")
# One worker: CPython 3.11 (Debian 12's) fails schemathesis's parallel schema compilation now and
# then ("AST constructor recursion depth mismatch").
exec schemathesis --config-file ops/contract/schemathesis.toml run "$api_url/openapi.json" \
  --checks all --workers 1 --max-examples "${CONTRACT_MAX_EXAMPLES:-40}" "${seed_arguments[@]}" \
  -H "Authorization: Bearer $api_key"
