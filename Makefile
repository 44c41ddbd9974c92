# Herald: the two commands a new machine needs are `make run` and `make test`.
.PHONY: run stop test bench services services-stop lint fmt dashboards load-test audit cycles

## Install what is missing, start PostgreSQL, Redis, Apache Kafka and Herald in the foreground (Ctrl-C stops all).
run:
	scripts/run-local.sh

## Stop what a `make run` (or `make services`) left running from $HERALD_RUN_DIR (default /tmp/herald-run).
stop:
	scripts/run-local.sh stop

## Run every test (unit and integration) against real PostgreSQL, Redis and Apache Kafka, started as needed.
test:
	scripts/test.sh

## Load benchmark: starts the stack, drives it over loopback with oha, prints and writes bench-results/*.json.
bench:
	scripts/bench.sh

## Start only the backing services (PostgreSQL, Redis, Apache Kafka) in the background.
services:
	scripts/services.sh start

services-stop:
	scripts/services.sh stop

## k6 load tests against the SLA: SCENARIO=smoke|load|stress|spike|soak (default smoke); DURATION, RATE overridable; writes load-tests/results/.
load-test:
	scripts/load-test.sh $(SCENARIO)

## Check the Grafana dashboards and Prometheus rules (schema, promtool, live against a running stack).
dashboards:
	scripts/check-dashboards.sh

## Supply chain: cargo deny (advisories, licences, bans, sources: deny.toml) and cargo audit (ops/supply-chain/).
audit:
	scripts/audit.sh

## Import circles between each crate's modules (scripts/module-cycles.py); exits 1 while there is one.
cycles:
	scripts/module-cycles.py

lint:
	scripts/services.sh build-deps
	scripts/module-cycles.py
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p herald-telemetry --features profiling --all-targets -- -D warnings

fmt:
	cargo fmt --all
