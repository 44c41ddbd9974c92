#!/usr/bin/env python3
"""Checks of Herald's dashboards and Prometheus rules, run by scripts/check-dashboards.sh.

    check.py rule-tests            every alert has a unit test where it fires and one where it does not
    check.py alert-hygiene         every alert has a severity Alertmanager routes (critical, warning)
                                   and a runbook_url naming its page in docs/runbooks/, which exists
                                   (and every page there is an alert's)
    check.py scope                 every aggregation of a rule keeps `namespace`; every series a
                                   dashboard reads is narrowed by the $cluster and $namespace variables
    check.py provisioning          the Grafana provisioning files are complete and match the dashboards
    check.py live PROMETHEUS_URL   every panel query, variable and rule against a Prometheus that
                                   scrapes a running Herald

Needs PyYAML (scripts/tools.sh puts it on PATH) and, for `scope` and `live`, node with grafana/tools
installed (`npm ci --prefix grafana/tools`): PromQL is parsed with Prometheus's own grammar.

`live` fails on a panel or variable query that errors, returns nothing or only NaN, and on one
that names a metric with no series (a query can still return data through `or vector(0)`). Alert
expressions return nothing while all is well, so for every rule each series selector must match a
series instead (Herald declares its labelled series at zero at start-up, status_class="5xx" and
outcome="permanent_error" included), every rule must be loaded and evaluate without error, and a
recording rule's expression must return something. A metric listed in EVENT_ONLY (none now) would
be exempt from "has no series"; so are the metrics of EXTERNAL_EXPORTERS, which only a Kubernetes
cluster has (cAdvisor, kube-state-metrics, kafka-exporter), and rule selectors naming a scrape job of
EXTERNAL_JOBS (`up{job="herald-kafka-exporter"}`): their queries must still parse and run
without error, and a query that names one returns nothing locally (a note, not a failure) only when
every metric it misses is one of them.
"""
import json
import math
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "grafana" / "dashboards"
PROVISIONING = ROOT / "grafana" / "provisioning"
RULES_DIR = ROOT / "ops" / "prometheus"
RULE_FILES = [RULES_DIR / "herald-recording-rules.yml", RULES_DIR / "herald-alerts.yml"]
TESTS = sorted((RULES_DIR / "tests").glob("*.yml"))

# Metrics with no series until what they count happens, each with the reason; everything else the
# dashboards and rules name must have a series on a running system. Empty: every labelled series
# Herald exposes is declared at zero at start-up (or, for herald_db_deadline_exceeded_total and
# herald_db_statement_duration_seconds, touched on an operation's first statement), so a panel or
# rule that finds nothing points at a wrong name or a missing declaration, not at a quiet system.
EVENT_ONLY = {}

# Metrics of exporters that run beside Herald on Kubernetes, not in the local stack this checks
# against: the dashboards' Kubernetes panels and the kafka-exporter rules read them.
EXTERNAL_EXPORTERS = {
    "container_cpu_cfs_throttled_periods_total": "cAdvisor (the kubelet)",
    "container_cpu_cfs_periods_total": "cAdvisor (the kubelet)",
    "container_cpu_usage_seconds_total": "cAdvisor (the kubelet)",
    "container_memory_working_set_bytes": "cAdvisor (the kubelet)",
    "kube_pod_container_resource_limits": "kube-state-metrics",
    "kube_pod_container_resource_requests": "kube-state-metrics",
    "kube_pod_container_status_last_terminated_reason": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
    "kube_horizontalpodautoscaler_status_current_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_status_desired_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_spec_max_replicas": "kube-state-metrics",
    "kafka_consumergroup_lag": "kafka-exporter (Strimzi), through the chart's PodMonitor",
    "herald:kafka_consumergroup_lag:sum": "a recording rule on kafka-exporter's kafka_consumergroup_lag",
}

# Scrape jobs of those exporters (a selector naming one matches nothing here, `up` included).
EXTERNAL_JOBS = {"herald-kafka-exporter": "the chart's kafka-exporter PodMonitor"}

# Dashboard variables whose label may be missing everywhere: `cluster` exists only where several
# clusters' series meet (Thanos, Mimir, federation); with none, its "All" (.*) matches every series.
OPTIONAL_LABEL_VARIABLES = {"cluster"}

# Every series a dashboard reads carries these matchers, so that one Herald release is shown at a
# time (the namespace) wherever several are scraped (and clusters, where several meet).
DASHBOARD_SCOPE = {"cluster": "$cluster", "namespace": "$namespace"}

# The label every aggregation of a rule keeps: one Herald release per namespace.
RULE_SCOPE_LABEL = "namespace"
SEVERITIES = {"critical", "warning"}
RUNBOOKS = ROOT / "docs" / "runbooks"
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")

# What Grafana would put in for its variables, with the dashboards' defaults ("All").
GRAFANA_VARIABLES = {
    "$__rate_interval": "30s",
    "$__interval": "5s",
    "${datasource}": "",
    "$job": ".*",
    "$instance": ".*",
    "$namespace": ".*",
    "$cluster": ".*",
}

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check.py needs PyYAML: scripts/tools.sh install && eval \"$(scripts/tools.sh env)\"")


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def alerts_and_records():
    alerts, records = [], []
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                (alerts if "alert" in rule else records).append((path.name, group["name"], rule))
    return alerts, records


# --- rule-tests ---------------------------------------------------------------------------------

def report(problems, prefix, summary, after="", verdicts=("yes", "NO")):
    """Prints each problem (`FAIL <prefix><problem>`), then `<summary>: <verdict><after>`; the exit
    status: 1 if there was a problem."""
    for problem in problems:
        print(f"FAIL {prefix}{problem}")
    print(f"{summary}: {verdicts[1] if problems else verdicts[0]}{after}")
    return 1 if problems else 0

def rule_tests():
    alerts, _ = alerts_and_records()
    fires, quiet = {}, {}
    for path in TESTS:
        for test in load_yaml(path).get("tests", []):
            for case in test.get("alert_rule_test", []):
                target = fires if case.get("exp_alerts") else quiet
                target.setdefault(case["alertname"], []).append(f"{path.name} at {case['eval_time']}")
    problems = []
    for _, _, rule in alerts:
        name = rule["alert"]
        if name not in fires:
            problems.append(f"{name}: no unit test where it fires")
        if name not in quiet:
            problems.append(f"{name}: no unit test where it does not fire")
    known = {rule["alert"] for _, _, rule in alerts}
    for name in sorted(set(fires) | set(quiet)):
        if name not in known:
            problems.append(f"{name}: tested but not an alert in {', '.join(p.name for p in RULE_FILES)}")
    return report(problems, "", f"rule tests: {len(known)} alerts, each with a firing and a quiet case",
                  after=f" ({len(TESTS)} test files)")


# --- alert-hygiene ------------------------------------------------------------------------------

def runbook_path(alert):
    return f"docs/runbooks/{alert}.md"


def alert_hygiene():
    alerts, _ = alerts_and_records()
    problems = []
    for file, _, rule in alerts:
        name = rule["alert"]
        severity = rule.get("labels", {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{file} {name}: severity {severity!r}, not one of {sorted(SEVERITIES)}")
        url = rule.get("annotations", {}).get("runbook_url")
        if url != runbook_path(name):
            problems.append(f"{file} {name}: runbook_url {url!r}, want {runbook_path(name)!r}")
            continue
        page = ROOT / url
        if not page.is_file():
            problems.append(f"{file} {name}: its runbook {url} does not exist")
            continue
        text = page.read_text()
        if not text.startswith(f"# {name}\n"):
            problems.append(f"{url}: does not start with the title \"# {name}\"")
        if f"**Severity: {severity}**" not in text:
            problems.append(f"{url}: does not say **Severity: {severity}**, the alert's")
        missing = [section for section in RUNBOOK_SECTIONS if f"\n{section}\n" not in text]
        if missing:
            problems.append(f"{url}: no section {', '.join(missing)}")
    known = {rule["alert"] for _, _, rule in alerts}
    for page in sorted(RUNBOOKS.glob("*.md")):
        if page.name != "README.md" and page.stem not in known:
            problems.append(f"docs/runbooks/{page.name}: no alert of that name")
    index = (RUNBOOKS / "README.md").read_text() if (RUNBOOKS / "README.md").is_file() else ""
    for name in sorted(known):
        if f"({name}.md)" not in index:
            problems.append(f"docs/runbooks/README.md: does not link {name}.md")
    return report(problems, "", f"alert hygiene: {len(known)} alerts, each with a severity of "
                  f"{sorted(SEVERITIES)} and a runbook in docs/runbooks/")


# --- scope --------------------------------------------------------------------------------------

def dashboard_queries():
    """(dashboard, where, expr) for every panel target and query variable of every dashboard."""
    queries = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                queries.append((path.stem, f"variable ${variable['name']}", variable["query"]))
        panels = [p for top in dashboard["panels"] for p in ([top] + top.get("panels", []))]
        for panel in panels:
            for target in panel.get("targets", []):
                queries.append((path.stem, f"panel \"{panel['title']}\" {target['refId']}", target["expr"]))
    return queries


def label_values_series(expr):
    """The series selector of a label_values(SELECTOR, LABEL) variable query."""
    inner = expr[len("label_values("):-1]
    return inner.rsplit(",", 1)[0].strip() if "," in inner else ""


def scope():
    problems = []
    alerts, records = alerts_and_records()
    rules = alerts + records
    for (file, _, rule), analysis in zip(rules, parse_all([rule["expr"] for _, _, rule in rules])):
        name = rule.get("alert") or rule.get("record")
        for aggregation in analysis["aggregations"]:
            kept = (RULE_SCOPE_LABEL in aggregation["labels"] if aggregation["modifier"] == "by"
                    else aggregation["modifier"] == "without" and RULE_SCOPE_LABEL not in aggregation["labels"])
            if not kept:
                problems.append(f"{file} {name}: {aggregation['text'][:80]} drops `{RULE_SCOPE_LABEL}`")
    queries = dashboard_queries()
    exprs = [label_values_series(expr) if where.startswith("variable") else expr for _, where, expr in queries]
    for (dash, where, expr), analysis in zip(queries, parse_all(exprs)):
        # A scope variable's own query is narrowed only by the scope variables before it
        # ($namespace by $cluster; $cluster by none).
        variable = where.split("$", 1)[1] if where.startswith("variable") else None
        order = list(DASHBOARD_SCOPE)
        wanted = dict(list(DASHBOARD_SCOPE.items())[:order.index(variable)] if variable in order
                      else DASHBOARD_SCOPE.items())
        for selector in analysis["selectors"]:
            matchers = {(m["label"], m["op"], m["value"]) for m in selector["matchers"]}
            missing = [label for label, value in wanted.items() if (label, "=~", value) not in matchers]
            if missing:
                problems.append(f"{dash} {where}: {selector['text']} has no "
                                + ", ".join(f'{label}=~"{wanted[label]}"' for label in missing))
    return report(problems, "scope: ", f"scope: {len(rules)} rules keep `{RULE_SCOPE_LABEL}` in every aggregation, "
                  f"{len(queries)} dashboard queries are narrowed by {', '.join(f'${v}' for v in DASHBOARD_SCOPE)}")


# --- provisioning -------------------------------------------------------------------------------

def provisioning():
    problems = []
    sources = []
    for path in sorted((PROVISIONING / "datasources").glob("*.y*ml")):
        doc = load_yaml(path)
        if doc.get("apiVersion") != 1:
            problems.append(f"{path.name}: apiVersion must be 1")
        sources += doc.get("datasources", [])
    prometheus = [s for s in sources if s.get("type") == "prometheus"]
    if not prometheus:
        problems.append("datasources: no data source of type prometheus")
    for source in prometheus:
        for key in ("name", "uid", "url", "access"):
            if not source.get(key):
                problems.append(f"datasource {source.get('name')}: no {key}")
    providers = []
    for path in sorted((PROVISIONING / "dashboards").glob("*.y*ml")):
        doc = load_yaml(path)
        if doc.get("apiVersion") != 1:
            problems.append(f"{path.name}: apiVersion must be 1")
        providers += doc.get("providers", [])
    if not any(p.get("type") == "file" and p.get("options", {}).get("path") for p in providers):
        problems.append("dashboards: no file provider with a path")
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        variable = next((v for v in dashboard["templating"]["list"] if v["name"] == "datasource"), None)
        if not variable or variable.get("query") != "prometheus":
            problems.append(f"{path.name}: no $datasource variable of type prometheus")
    return report(problems, "provisioning: ", f"provisioning: {len(prometheus)} Prometheus data source(s), "
                  f"{len(providers)} dashboard provider(s)", verdicts=("ok", "FAILED"))


# --- live ---------------------------------------------------------------------------------------

class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        if path.startswith("/api/v1/label/"):  # GET only
            request = urllib.request.Request(f"{self.url}{path}?{query}")
        else:  # POST: long queries do not fit a URL
            request = urllib.request.Request(f"{self.url}{path}", data=query.encode(), method="POST",
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                body = json.loads(text)
            except ValueError:
                raise RuntimeError(f"HTTP {error.code} from {path}: {text[:200]!r}") from None
        if body.get("status") != "success":
            raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def get_plain(self, path):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            return json.load(response)["data"]


def parse_all(exprs):
    tools = ROOT / "grafana" / "tools"
    out = subprocess.run(["node", str(tools / "promql-selectors.mjs")], input=json.dumps(exprs),
                         capture_output=True, text=True, check=True, cwd=tools)
    return json.loads(out.stdout)


def substitute(expr, window):
    for name, value in {**GRAFANA_VARIABLES, "$__range": window}.items():
        expr = expr.replace(name, value)
    return expr


class Live:
    def __init__(self, url, since):
        self.prom = Prometheus(url)
        self.since = since
        self.now = time.time()
        self.window = f"{max(60, int(self.now - since))}s"
        self.failures = []
        self.notes = []
        self.missing_metrics = {}
        self.series_cache = {}

    def fail(self, where, message):
        self.failures.append(f"{where}: {message}")
        print(f"FAIL {where}: {message}")

    def series(self, selector):
        if selector not in self.series_cache:
            try:
                self.series_cache[selector] = self.prom.get("/api/v1/series", **{"match[]": selector},
                                                            start=self.since - 60, end=time.time())
            except RuntimeError as error:
                self.series_cache[selector] = error
        return self.series_cache[selector]

    def metric_exists(self, name):
        found = self.series(f'{{__name__="{name}"}}')
        return not isinstance(found, Exception) and len(found) > 0

    def check_selectors(self, where, analysis, strict_values):
        """Each selector's metric must exist (or be EVENT_ONLY); with strict_values (rules), each
        whole selector must match a series."""
        ok = True
        for selector in analysis["selectors"]:
            name = selector["name"]
            if not name:
                continue
            found = self.series(selector["text"])
            if isinstance(found, Exception):
                self.fail(where, f"selector {selector['text']}: {found}")
                ok = False
                continue
            if found:
                continue
            if not self.metric_exists(name):
                if name in EVENT_ONLY:
                    self.notes.append(f"{where}: {name} has no series yet (only once {EVENT_ONLY[name]})")
                elif name in EXTERNAL_EXPORTERS:
                    self.notes.append(f"{where}: {name} has no series here (from {EXTERNAL_EXPORTERS[name]})")
                else:
                    self.missing_metrics.setdefault(name, []).append(where)
                    self.fail(where, f"metric {name} has no series")
                    ok = False
                continue
            if not strict_values:
                continue
            external_job = next((m["value"] for m in selector["matchers"]
                                 if m["label"] == "job" and m["op"] == "=" and m["value"] in EXTERNAL_JOBS), None)
            if external_job:
                self.notes.append(f"{where}: {selector['text']} has no series here (job {external_job}: "
                                  f"{EXTERNAL_JOBS[external_job]})")
                continue
            labels = set()
            for series in self.series(f'{{__name__="{name}"}}'):
                labels |= set(series)
            missing = [m["label"] for m in selector["matchers"]
                       if m["label"] != "__name__" and m["label"] not in labels]
            reason = f"{name} has no label {', '.join(missing)}" if missing else \
                f"{name} exists, but no series has these label values"
            self.fail(where, f"selector {selector['text']} matches no series ({reason})")
            ok = False
        return ok

    def targets(self):
        active = self.prom.get_plain("/api/v1/targets")["activeTargets"]
        jobs = {}
        for target in active:
            jobs.setdefault(target["labels"]["job"], []).append(target["health"])
        for job in ("herald-api", "herald-worker"):
            if job not in jobs:
                self.fail("targets", f"no scrape job {job}")
            elif "up" not in jobs[job]:
                self.fail("targets", f"{job} is not up: {jobs[job]}")
        print(f"targets: {', '.join(f'{job} {health}' for job, health in sorted(jobs.items()))}")

    def panels(self):
        queries = []
        for path in sorted(DASHBOARDS.glob("*.json")):
            dashboard = json.loads(path.read_text())
            for variable in dashboard["templating"]["list"]:
                if variable["type"] == "query":
                    queries.append(("variable", path.stem, f"${variable['name']}", variable["query"]))
            panels = [p for top in dashboard["panels"] for p in ([top] + top.get("panels", []))]
            for panel in panels:
                for target in panel.get("targets", []):
                    queries.append(("panel", path.stem, f"\"{panel['title']}\" {target['refId']}", target["expr"]))
        analyses = parse_all([substitute(expr, self.window) if kind == "panel" else self.variable_series(expr)
                              for kind, _, _, expr in queries])
        counts = {"panel": 0, "variable": 0}
        for (kind, dash, name, expr), analysis in zip(queries, analyses):
            where = f"{dash} {kind} {name}"
            counts[kind] += 1
            if analysis["errors"]:
                self.fail(where, "; ".join(analysis["errors"]))
                continue
            if kind == "variable":
                self.check_variable(where, expr)
                continue
            query = substitute(expr, self.window)
            try:
                data = self.prom.get("/api/v1/query_range", query=query, start=self.since,
                                     end=time.time(), step="5s")
            except RuntimeError as error:
                self.fail(where, f"query error: {error}  [{query}]")
                continue
            values = [float(v) for series in data["result"] for _, v in series["values"]]
            if not values and self.only_external_missing(analysis):
                self.check_selectors(where, analysis, strict_values=False)
            elif not values:
                self.fail(where, f"returns nothing  [{query}]")
                self.check_selectors(where, analysis, strict_values=False)
            elif all(math.isnan(v) for v in values):
                self.fail(where, f"returns only NaN  [{query}]")
            else:
                # Data, but maybe only through `or vector(0)`: every metric it names must exist.
                self.check_selectors(where, analysis, strict_values=False)
        print(f"dashboards: {counts['panel']} panel queries and {counts['variable']} variable queries run")

    def only_external_missing(self, analysis):
        """True when the query names a metric of EXTERNAL_EXPORTERS with no series here, and every
        metric it names without series is one of those: what it reads exists only on Kubernetes."""
        missing = {s["name"] for s in analysis["selectors"] if s["name"] and not self.metric_exists(s["name"])}
        return bool(missing) and missing <= set(EXTERNAL_EXPORTERS)

    @staticmethod
    def variable_series(expr):
        return substitute(label_values_series(expr), "0s")

    def check_variable(self, where, expr):
        if not expr.startswith("label_values("):
            self.fail(where, f"not a label_values() query: {expr}")
            return
        inner = expr[len("label_values("):-1]
        label = inner.rsplit(",", 1)[1].strip() if "," in inner else inner.strip()
        series = self.variable_series(expr)
        try:
            params = {"match[]": series} if series else {}
            values = self.prom.get(f"/api/v1/label/{label}/values", **params,
                                   start=self.since - 60, end=time.time())
        except RuntimeError as error:
            self.fail(where, f"query error: {error}")
            return
        if not values and label in OPTIONAL_LABEL_VARIABLES:
            self.notes.append(f"{where}: no series has a {label} label here (its \"All\" matches them all)")
        elif not values:
            self.fail(where, f"{expr} has no values")

    def rules(self):
        alerts, records = alerts_and_records()
        loaded = {}
        for group in self.prom.get_plain("/api/v1/rules")["groups"]:
            for rule in group["rules"]:
                loaded[rule["name"]] = rule
        analyses = parse_all([rule["expr"] for _, _, rule in alerts + records])
        for (file, group, rule), analysis in zip(alerts + records, analyses):
            name = rule.get("alert") or rule.get("record")
            where = f"{file} {name}"
            if name not in loaded:
                self.fail(where, "not loaded by Prometheus")
                continue
            if loaded[name].get("health") not in ("ok", "unknown") or loaded[name].get("lastError"):
                self.fail(where, f"evaluation failed: {loaded[name].get('lastError')}")
            if analysis["errors"]:
                self.fail(where, "; ".join(analysis["errors"]))
                continue
            try:
                result = self.prom.get("/api/v1/query", query=rule["expr"])["result"]
            except RuntimeError as error:
                self.fail(where, f"query error: {error}")
                continue
            if "record" in rule and not result and not self.only_external_missing(analysis):
                self.fail(where, "the recording rule's expression returns nothing")
            self.check_selectors(where, analysis, strict_values=True)
        firing = [a for a in self.prom.get_plain("/api/v1/alerts")["alerts"] if a["state"] == "firing"]
        print(f"rules: {len(records)} recording rules and {len(alerts)} alerts evaluated by Prometheus and checked; "
              f"firing now: {', '.join(sorted({a['labels']['alertname'] for a in firing})) or 'none'}")

    def run(self):
        self.targets()
        self.panels()
        self.rules()
        for note in self.notes:
            print(f"note {note}")
        if self.missing_metrics:
            print("metrics named by the dashboards or rules that the running system does not expose:")
            for name, users in sorted(self.missing_metrics.items()):
                print(f"  {name}  ({len(users)} uses, e.g. {users[0]})")
        print(f"live: {len(self.failures)} failure(s), {len(self.notes)} note(s)")
        return 1 if self.failures else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "rule-tests":
        return rule_tests()
    if len(argv) >= 2 and argv[1] == "provisioning":
        return provisioning()
    if len(argv) >= 2 and argv[1] == "alert-hygiene":
        return alert_hygiene()
    if len(argv) >= 2 and argv[1] == "scope":
        return scope()
    if len(argv) >= 3 and argv[1] == "live":
        since = float(argv[3]) if len(argv) > 3 else time.time() - 120
        return Live(argv[2], since).run()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
