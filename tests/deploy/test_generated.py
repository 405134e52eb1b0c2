"""The generated Kubernetes resources agree with their sources (deploy/topics.json, the rule
files, the dashboards): deploy/tools/generate_k8s.py --check."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_k8s", ROOT / "deploy" / "tools" / "generate_k8s.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date() -> None:
    stale = generator().stale()
    assert not stale, (
        f"out of date: {[str(p.relative_to(ROOT)) for p in stale]}; "
        "run: uv run python deploy/tools/generate_k8s.py"
    )


def test_kafka_topics_restate_topics_json_exactly() -> None:
    wanted = json.loads((ROOT / "deploy" / "topics.json").read_text(encoding="utf-8"))["topics"]
    path = ROOT / "deploy" / "k8s" / "components" / "kafka-topics" / "kafka-topics.yaml"
    found = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert [d["metadata"]["name"] for d in found] == [t["name"] for t in wanted]
    for topic, resource in zip(wanted, found, strict=True):
        assert resource["kind"] == "KafkaTopic"
        assert resource["spec"]["partitions"] == topic["partitions"]
        assert resource["spec"]["config"]["retention.ms"] == topic["retention_ms"]
        assert resource["metadata"]["labels"]["fabrique.paris/owner"] == topic["owner"]


def test_prometheus_rule_and_dashboard_config_maps_restate_their_sources() -> None:
    monitoring = ROOT / "deploy" / "k8s" / "components" / "monitoring"
    rules = [
        d
        for d in yaml.safe_load_all(
            (monitoring / "prometheus-rules.yaml").read_text(encoding="utf-8")
        )
        if d
    ]
    for resource in rules:
        source = ROOT / "deploy" / "prometheus" / "rules" / f"{resource['metadata']['name']}.yml"
        assert (
            resource["spec"]["groups"]
            == yaml.safe_load(source.read_text(encoding="utf-8"))["groups"]
        )
    maps = [
        d
        for d in yaml.safe_load_all(
            (monitoring / "grafana-dashboards.yaml").read_text(encoding="utf-8")
        )
        if d
    ]
    dashboards = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert len(maps) == len(dashboards)
    for resource, path in zip(maps, dashboards, strict=True):
        assert resource["data"] == {path.name: path.read_text(encoding="utf-8")}


def test_check_mode_notices_a_stale_file(tmp_path: Path) -> None:
    module = generator()
    target = tmp_path / "kafka-topics.yaml"
    target.write_text("stale\n", encoding="utf-8")
    module.outputs = lambda: {target: "fresh\n"}  # type: ignore[attr-defined]
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0 and target.read_text(encoding="utf-8") == "fresh\n"
    assert module.main(["--check"]) == 0
