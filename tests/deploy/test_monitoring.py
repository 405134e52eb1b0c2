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
        "fabrique_service",
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
            for suffix in ("", "_total", "_bucket", "_sum", "_count", "_created"):
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


def test_rules_alert_on_what_operators_must_know(kit: ModuleType) -> None:
    """A growing outbox, dead letters, consumer lag and error rates, for every service."""
    promql = kit.need("promql_parser")
    per_alert: dict[str, set[str]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                metrics, _ = selectors(promql, promql.parse(rule["expr"]))
                per_alert.setdefault(rule["alert"], set()).update(metrics)
    for service in SERVICES:
        assert f"{service}_outbox_pending_messages" in per_alert["FabriqueOutboxGrowing"]
        assert f"{service}_outbox_oldest_pending_age_seconds" in per_alert["FabriqueOutboxStalled"]
        assert f"{service}_events_dead_lettered_total" in per_alert["FabriqueEventsDeadLettered"]
        assert f"{service}_consumer_lag_messages" in per_alert["FabriqueConsumerLagHigh"]
        assert f"{service}_http_requests_total" in per_alert["FabriqueHttpErrorRateHigh"]
    assert "notifications_deliveries_total" in per_alert["FabriqueAlertDeliveriesDead"]


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
        "inventory_vacant_production_surface_square_metres",
        "notifications_deliveries_total",
        "notifications_vacancy_to_delivery_seconds_bucket",
    }
    for service in SERVICES:
        needed |= {
            f"{service}_outbox_pending_messages",
            f"{service}_outbox_oldest_pending_age_seconds",
            f"{service}_consumer_lag_messages",
            f"{service}_http_requests_total",
            f"{service}_http_request_duration_seconds_bucket",
            f"{service}_events_dead_lettered_total",
        }
    assert needed <= used, sorted(needed - used)
