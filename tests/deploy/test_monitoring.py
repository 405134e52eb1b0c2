"""Dashboards and alert rules: structure, PromQL that parses (promql-parser, and promtool where
installed), alert unit tests (promtool test rules), the panels and alerts the operators need.

Which metric each expression names is collected here too (`referenced_metrics`) and checked
against the live services by test_metrics_exported.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from fabkit.testing import fail_or_skip

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
OPERATIONS = ROOT / "docs" / "operations.md"
SERVICES = ("inventory", "leasing", "notifications")
#: Grafana's built-in interval variables, replaced by a sample duration before parsing.
GRAFANA_INTERVALS = ("$__rate_interval", "$__interval", "$__range")
_VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)")


# --------------------------------------------------------------------------------------------
# expressions
# --------------------------------------------------------------------------------------------


def dashboard_expressions(path: Path) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target, template variables expanded to each value."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    values: dict[str, list[str]] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "custom":
            values[variable["name"]] = [v.strip() for v in variable["query"].split(",")]
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for interval in GRAFANA_INTERVALS:
                expr = expr.replace(interval, "5m")
            names = {a or b for a, b in _VAR.findall(expr)}
            assert names <= set(values), (
                f"{panel['title']}: undefined variables {names - set(values)}"
            )
            expansions = [expr]
            for name in names:
                expansions = [
                    re.sub(rf"\$\{{{name}(?::[^}}]*)?\}}|\${name}\b", value, e)
                    for e in expansions
                    for value in values[name]
                ]
            for concrete in expansions:
                yield f"{path.name}: {panel['title']} ({target['refId']})", concrete


def rule_expressions(path: Path) -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            yield f"{path.name}: {rule.get('alert') or rule.get('record')}", str(rule["expr"])


def all_expressions() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        found += dashboard_expressions(path)
    for path in RULE_FILES:
        found += rule_expressions(path)
    return found


def parse(promql: ModuleType, where: str, expr: str) -> Any:
    try:
        return promql.parse(expr)
    except Exception as exc:
        pytest.fail(f"{where}: {exc}\n{expr}")


def selectors(promql: ModuleType, tree: Any) -> tuple[set[str], set[str]]:
    """Metric names and label names (matchers, by/without, on/ignoring) used by an expression."""
    metrics: set[str] = set()
    labels: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql.VectorSelector):
            if node.name:
                metrics.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    metrics.add(matcher.value)
                else:
                    labels.add(matcher.name)
        modifier = getattr(node, "modifier", None)  # by/without; on/ignoring + group_x(...)
        labels.update(getattr(modifier, "labels", None) or [])
        labels.update(getattr(modifier, "group_labels", None) or [])
        labels.update(getattr(getattr(modifier, "matching", None), "labels", None) or [])
        return True

    promql.walk(tree, visit)
    return metrics, labels


def referenced_metrics(promql: ModuleType) -> dict[str, set[str]]:
    """{metric name: {where it is used}} over every dashboard and rule."""
    used: dict[str, set[str]] = {}
    for where, expr in all_expressions():
        metrics, _ = selectors(promql, parse(promql, where, expr))
        for metric in metrics:
            used.setdefault(metric, set()).add(where)
    return used


# --------------------------------------------------------------------------------------------
# PromQL
# --------------------------------------------------------------------------------------------


def test_every_expression_parses(kit: ModuleType) -> None:
    promql = kit.need("promql_parser")
    expressions = all_expressions()
    assert len(expressions) > 50
    for where, expr in expressions:
        parse(promql, where, expr)


def test_the_parser_has_teeth(kit: ModuleType) -> None:
    promql = kit.need("promql_parser")
    for bad in ("sum(rate(x[5m])", "rate(x)", "histogram_quantile(0.9 sum(x))", "x{a=b}"):
        with pytest.raises(ValueError, match=r"."):
            promql.parse(bad)


def test_labels_used_are_labels_the_metrics_carry(kit: ModuleType) -> None:
    """`by (chanel)` or `{stauts="500"}` would silently match nothing: refuse unknown labels.
    Label names come from the collectors the services declare (imported here)."""
    promql = kit.need("promql_parser")
    declared = declared_labels()
    # Set by Prometheus from the scrape target (compose static labels, ServiceMonitor).
    target_labels = {
        "job",
        "instance",
        "process",
        "namespace",
        "pod",
        "service",
    }
    for where, expr in all_expressions():
        metrics, labels = selectors(promql, parse(promql, where, expr))
        known = set(target_labels)
        for metric in metrics:
            known |= declared.get(metric, set())
        assert labels <= known, f"{where}: unknown labels {sorted(labels - known)} in {expr}"


def declared_labels() -> dict[str, set[str]]:
    """{exported sample name: label names} from every collector fabkit and the services create."""
    import importlib

    from fabkit.metrics import _CACHE, ServiceMetrics

    for service in SERVICES:
        ServiceMetrics.for_service(service)
        importlib.import_module(f"{service}.metrics")
    labels: dict[str, set[str]] = {}
    for collector in list(_CACHE.values()):
        if isinstance(collector, ServiceMetrics):
            continue
        names = set(getattr(collector, "_labelnames", ()))
        for family in collector.describe():
            for suffix in ("", "_total", "_bucket", "_sum", "_count"):
                labels[family.name + suffix] = names | ({"le"} if suffix == "_bucket" else set())
    return labels


# --------------------------------------------------------------------------------------------
# rules
# --------------------------------------------------------------------------------------------


def anchors(markdown: str) -> list[str]:
    """GitHub-style anchors of a Markdown file's headings (a repeated one gets a suffix there)."""
    found = []
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.append(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_rule_files_are_well_formed() -> None:
    assert RULE_FILES
    sections = anchors(OPERATIONS.read_text(encoding="utf-8"))
    for path in RULE_FILES:
        groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        assert len({g["name"] for g in groups}) == len(groups)
        for group in groups:
            assert set(group) <= {"name", "rules", "interval", "limit"}
            for rule in group["rules"]:
                assert set(rule) <= {
                    "alert",
                    "expr",
                    "for",
                    "keep_firing_for",
                    "labels",
                    "annotations",
                }
                assert re.fullmatch(r"Fabrique[A-Z][A-Za-z]+", rule["alert"])
                assert rule["labels"]["severity"] in ("critical", "warning")
                assert rule["labels"]["service"]
                annotations = rule["annotations"]
                assert {"summary", "description", "runbook"} <= set(annotations)
                page, _, anchor = annotations["runbook"].partition("#")
                assert page == "docs/operations.md", annotations["runbook"]
                assert sections.count(anchor) == 1, f"{annotations['runbook']}: no single heading"
                if "for" in rule:
                    assert re.fullmatch(r"\d+[smh]", rule["for"])


#: What each alert watches, for every service: a shared metric (fabkit.metrics) of every job.
PER_SERVICE_ALERTS = {
    "FabriqueOutboxGrowing": "outbox_pending_events",
    "FabriqueOutboxStalled": "outbox_oldest_event_age_seconds",
    "FabriqueEventsDeadLettered": "events_dead_lettered_total",
    "FabriqueConsumerLagHigh": "consumer_lag_records",
    "FabriqueHttpErrorRateHigh": "http_requests_total",
    "FabriqueHttpLatencyHigh": "http_request_duration_seconds_bucket",
    "FabriqueServiceDown": "up",
}


def job_selector(promql: ModuleType, tree: Any) -> set[str]:
    """The jobs an expression's selectors are narrowed to (job="x" or job=~"x|y"), merged."""
    jobs: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql.VectorSelector):
            for matcher in node.matchers.matchers:
                if matcher.name == "job":
                    jobs.update(matcher.value.split("|"))
        return True

    promql.walk(tree, visit)
    return jobs


def test_rules_alert_on_what_operators_must_know(kit: ModuleType) -> None:
    """A growing outbox, dead letters, consumer lag, error rates and latency, and a process
    down, for every service: one rule each over the shared name, narrowed to the platform's
    jobs (a shared Prometheus has other workloads exporting http_requests_total) and grouped
    by job, so each service fires its own alert labelled with it."""
    promql = kit.need("promql_parser")
    per_alert: dict[str, list[dict[str, Any]]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                per_alert.setdefault(rule["alert"], []).append(rule)
    for alert, metric in PER_SERVICE_ALERTS.items():
        assert len(per_alert[alert]) == 1, f"{alert}: one rule for every service"
        rule = per_alert[alert][0]
        tree = promql.parse(rule["expr"])
        metrics, labels = selectors(promql, tree)
        assert metric in metrics, f"{alert} should watch {metric}"
        assert job_selector(promql, tree) == set(SERVICES), f"{alert}: {rule['expr']}"
        if alert != "FabriqueServiceDown":
            assert "job" in labels, f"{alert} should be grouped by job: {rule['expr']}"
        assert rule["labels"]["service"] == "{{ $labels.job }}"
    assert (
        "notifications_deliveries_total"
        in selectors(promql, promql.parse(per_alert["FabriqueAlertDeliveriesDead"][0]["expr"]))[0]
    )


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        fail_or_skip(
            "promtool is not installed (Debian package prometheus, installed by "
            "scripts/bootstrap.sh); the Python PromQL parser checks above still ran"
        )
    return found


def test_promtool_checks_the_rules() -> None:
    tool = promtool()
    done = subprocess.run(
        [tool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_of_the_alerts() -> None:
    """deploy/prometheus/tests: series in, the exact alerts (labels, rendered text) out."""
    tool = promtool()
    assert RULE_TESTS
    done = subprocess.run(
        [tool, "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_checks_the_compose_prometheus_config(tmp_path: Path) -> None:
    """deploy/compose/prometheus.yml, its rule_files pointed at the repository's rules."""
    tool = promtool()
    config = yaml.safe_load(
        (ROOT / "deploy" / "compose" / "prometheus.yml").read_text(encoding="utf-8")
    )
    config["rule_files"] = [str(ROOT / "deploy" / "prometheus" / "rules" / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [tool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Dashboard queries as recording rules, so Prometheus's own parser reads them too."""
    tool = promtool()
    rules = [
        {"record": f"fabrique:dashboard_check:{i}", "expr": expr}
        for i, (_, expr) in enumerate(e for path in DASHBOARDS for e in dashboard_expressions(path))
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8"
    )
    done = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------------------------
# dashboards
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path) -> None:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] == "row":
            if "repeat" in panel:
                assert (
                    variables[panel["repeat"]]["multi"] or variables[panel["repeat"]]["includeAll"]
                )
            continue
        assert panel["type"] in ("timeseries", "stat", "bargauge", "table", "gauge")
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()


def test_dashboard_shows_what_operators_need(kit: ModuleType) -> None:
    promql = kit.need("promql_parser")
    used: set[str] = set()
    for path in DASHBOARDS:
        for where, expr in dashboard_expressions(path):
            used |= selectors(promql, parse(promql, where, expr))[0]
    needed = {
        "inventory_units",
        "inventory_vacant_production_surface_square_meters",
        "notifications_deliveries_total",
        "notifications_vacancy_to_delivery_seconds_bucket",
        # leasing: time to let, applications, offers (pending, answered, out of rank)
        "leasing_vacancy_to_signed_lease_seconds_bucket",
        "leasing_applications",
        "leasing_offers_pending",
        "leasing_decisions_total",
        "leasing_offers_made_total",
        # every service, told apart by the job label
        "outbox_pending_events",
        "outbox_oldest_event_age_seconds",
        "consumer_lag_records",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "events_dead_lettered_total",
        "fabrique_build_info",
    }
    assert needed <= used, sorted(needed - used)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_tells_services_apart_by_job(kit: ModuleType, path: Path) -> None:
    """Every query of a metric every service has names its job: without it a panel of the
    inventory row would sum leasing's requests too."""
    from fabkit.metrics import shared_metric_names

    promql = kit.need("promql_parser")
    shared = shared_metric_names()
    shared |= {f"{name}_{suffix}" for name in shared for suffix in ("bucket", "sum", "count")}
    checked = 0
    for where, expr in dashboard_expressions(path):
        tree = parse(promql, where, expr)
        metrics, _ = selectors(promql, tree)
        if metrics & shared:
            checked += 1
            jobs = job_selector(promql, tree)
            assert jobs and jobs <= set(SERVICES), f"{where}: no job selector in {expr}"
    assert checked


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_links_to_the_traces(path: Path) -> None:
    """A dashboard link to the Jaeger UI, and from each service's HTTP panels to its traces
    in the time range shown; the UI's address is a variable (compose's Jaeger by default)."""
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    traces = variables["traces_url"]
    assert traces["type"] == "textbox" and traces["query"] == "http://localhost:16686"
    assert any(link["url"].startswith("${traces_url}/") for link in dashboard["links"])
    http = [p for p in dashboard["panels"] if "http_request" in json.dumps(p.get("targets"))]
    assert http
    for panel in http:
        urls = [link["url"] for link in panel.get("links", [])]
        assert any(
            u.startswith("${traces_url}/search?service=${service}") and "${__from}" in u
            for u in urls
        ), panel["title"]
