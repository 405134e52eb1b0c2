"""deploy/k8s: the portal ships like the services — a hardened Deployment with probes and
resources, its Service scraped by Prometheus, an Ingress on the public host, its migration Job
and database, an HPA and a PDB, the session secret from a Secret, NetworkPolicies that let it
reach the three APIs, Keycloak and its own database and nothing else. The generic checks of
test_kubernetes.py (schemas, Pod Security, pinned images) cover its resources too."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.name for p in (ROOT / "deploy" / "k8s" / "overlays").iterdir() if p.is_dir())
APIS = ("inventory", "leasing", "notifications")
WEB = {
    "app.kubernetes.io/name": "portal",
    "app.kubernetes.io/component": "web",
    "app.kubernetes.io/part-of": "fabrique",
    "fabrique.paris/service": "portal",
}
KEYCLOAK_POD = {
    "app": "keycloak",
    "app.kubernetes.io/instance": "fabrique-keycloak",
    "app.kubernetes.io/managed-by": "keycloak-operator",
}

Resource = dict[str, Any]


def named(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def by_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
        if (op == "In" and labels.get(key) not in values) or (
            op == "NotIn" and labels.get(key) in values
        ):
            return False
    return True


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def config(resources: list[Resource]) -> dict[str, str]:
    maps = [
        cm
        for cm in by_kind(resources, "ConfigMap")
        if cm["metadata"]["name"].startswith("portal-config")
    ]
    assert len(maps) == 1
    return maps[0]["data"]  # type: ignore[no-any-return]


def policies_for(resources: list[Resource], labels: dict[str, str]) -> list[Resource]:
    return [
        p for p in by_kind(resources, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)
    ]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_k8s", ROOT / "deploy" / "tools" / "generate_k8s.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_portal_web_deployment_has_probes_resources_and_waits_for_its_migrations(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    deployment = named(resources, "Deployment", "portal-web")
    template = deployment["spec"]["template"]
    assert WEB.items() <= template["metadata"]["labels"].items()
    assert "replicas" not in deployment["spec"], "the HPA owns the count"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spec = template["spec"]
    assert spec["serviceAccountName"] == "portal"
    (init,) = spec["initContainers"]
    assert init["args"][0] == "wait-for-migrations"
    (web,) = spec["containers"]
    tag = "dev" if overlay == "dev" else "0.1.0"
    assert web["image"] == init["image"] == f"fabrique/portal:{tag}"
    assert web["args"] == ["serve"]
    assert web["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert web["startupProbe"]["httpGet"]["path"] == "/livez"
    assert web["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(web["resources"]["requests"])
    assert {"cpu", "memory"} <= set(web["resources"]["limits"])
    assert "preStop" in web["lifecycle"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_session_secret_and_the_database_come_from_secrets(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    data = config(resources)
    assert not [k for k in data if "SECRET" in k or "DATABASE" in k], sorted(data)
    for workload in (
        named(resources, "Deployment", "portal-web"),
        named(resources, "Job", "portal-migrate"),
    ):
        spec = workload["spec"]["template"]["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            env = env_of(container)
            assert env["PORTAL_DATABASE_URL"] == {
                "secretKeyRef": {"name": "portal-db", "key": "database-url"}
            }
    web = named(resources, "Deployment", "portal-web")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(web)["PORTAL_SESSION_SECRET"] == {
        "secretKeyRef": {"name": "portal-session", "key": "session-secret"}
    }
    assert not by_kind(resources, "Secret"), "Secrets are created outside the repository"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_portal_calls_the_apis_by_their_services_and_logs_in_at_keycloak(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    data = config(resources)
    assert data["PORTAL_ENVIRONMENT"] == ("dev" if overlay == "dev" else "prod")
    for api in APIS:
        service = named(resources, "Service", api)
        assert [p["port"] for p in service["spec"]["ports"]] == [8000]
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == "api"
        assert data[f"PORTAL_{api.upper()}_URL"] == f"http://{api}:8000"
    inventory = next(
        cm["data"]
        for cm in by_kind(resources, "ConfigMap")
        if cm["metadata"]["name"].startswith("inventory-config")
    )
    assert data["PORTAL_OIDC_ISSUER"] == inventory["INVENTORY_OIDC_ISSUER"]
    assert data["PORTAL_OIDC_JWKS_URL"] == inventory["INVENTORY_OIDC_JWKS_URL"]
    keycloak_service = "http://fabrique-keycloak-service:8080/realms/fabrique"
    assert data["PORTAL_OIDC_INTERNAL_ISSUER"] == keycloak_service
    if overlay == "dev":
        assert data["PORTAL_PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"
    else:
        # The production realm allows one redirect: the portal's public address.
        assert data["PORTAL_PUBLIC_BASE_URL"] == generator().PORTAL_PUBLIC_URL


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_publishes_the_portal_service(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    service = named(resources, "Service", "portal")
    assert selects({"matchLabels": service["spec"]["selector"]}, WEB)
    assert service["metadata"]["labels"]["fabrique.paris/metrics"] == "true"
    assert service["spec"]["ports"][0]["name"] == "http"
    ingress = named(resources, "Ingress", "portal")["spec"]
    assert ingress["ingressClassName"] == "nginx"
    (rule,) = ingress["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": "portal", "port": {"name": "http"}}
    if overlay == "dev":
        assert rule["host"] == "fabrique.localhost" and "tls" not in ingress
    else:
        host = config(resources)["PORTAL_PUBLIC_BASE_URL"].removeprefix("https://")
        assert rule["host"] == host
        assert ingress["tls"] == [{"hosts": [host], "secretName": "portal-tls"}]
    monitors = by_kind(resources, "ServiceMonitor")
    assert any(
        selects(m["spec"]["selector"], service["metadata"]["labels"])
        and m["spec"]["endpoints"][0]["port"] == "http"
        for m in monitors
    ), "Prometheus scrapes the portal like the services"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_portal_scales_and_survives_a_drain(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    hpa = named(resources, "HorizontalPodAutoscaler", "portal-web")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "portal-web",
    }
    assert hpa["minReplicas"] >= (1 if overlay == "dev" else 2)
    assert hpa["maxReplicas"] > hpa["minReplicas"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    pdb = named(resources, "PodDisruptionBudget", "portal-web")["spec"]
    assert pdb["maxUnavailable"] == 1 and selects(pdb["selector"], WEB)
    job = named(resources, "Job", "portal-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_portal_reaches_the_apis_keycloak_and_its_database_only(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    mine = policies_for(resources, WEB)
    assert mine and any({"Ingress", "Egress"} <= set(p["spec"]["policyTypes"]) for p in mine)
    egress = [rule for p in mine for rule in p["spec"].get("egress", [])]

    def reaches(labels: dict[str, str], port: int) -> bool:
        return any(
            any(selects(peer.get("podSelector", {}), labels) for peer in rule.get("to", []))
            and any(p["port"] == port for p in rule.get("ports", []))
            for rule in egress
        )

    for api in APIS:
        api_pod = {"fabrique.paris/service": api, "app.kubernetes.io/component": "api"}
        assert reaches(api_pod, 8000), api
        worker = {"fabrique.paris/service": api, "app.kubernetes.io/component": "worker"}
        assert not reaches(worker, 8000), f"{api} workers take no traffic"
        # ...and the API pods let the portal in (policies add up).
        admitted = [
            peer
            for p in policies_for(resources, {**api_pod, "app.kubernetes.io/name": api})
            for rule in p["spec"].get("ingress", [])
            if any(port["port"] == 8000 for port in rule.get("ports", []))
            for peer in rule["from"]
        ]
        assert any(selects(peer.get("podSelector", {}), WEB) for peer in admitted), api
    assert reaches(KEYCLOAK_POD, 8080)
    assert reaches({"fabrique.paris/postgres-for": "portal"}, 5432)
    assert not reaches({"fabrique.paris/postgres-for": "inventory"}, 5432)
    assert not reaches({"strimzi.io/cluster": "fabrique", "strimzi.io/kind": "Kafka"}, 9092)
    inbound = [peer for p in mine for rule in p["spec"].get("ingress", []) for peer in rule["from"]]
    names = {
        peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        for peer in inbound
    }
    assert names == {"ingress-nginx", "monitoring"}


def test_the_dev_overlay_gives_the_portal_its_own_database() -> None:
    """dev-postgres has a portal-postgres reachable from the portal's pods only, and
    dev-secrets.sh makes the two Secrets the portal reads."""
    import yaml

    docs = [
        d
        for d in yaml.safe_load_all(
            (ROOT / "deploy/k8s/components/dev-postgres/postgres.yaml").read_text(encoding="utf-8")
        )
        if d
    ]
    statefulset = named(docs, "StatefulSet", "portal-postgres")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert labels["fabrique.paris/postgres-for"] == "portal"
    env = env_of(statefulset["spec"]["template"]["spec"]["containers"][0])
    assert env["POSTGRES_PASSWORD"] == {"secretKeyRef": {"name": "portal-db", "key": "password"}}
    policy = named(docs, "NetworkPolicy", "portal-postgres")
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    only_portal = {"fabrique.paris/service": "portal"}
    assert peers and all(peer["podSelector"]["matchLabels"] == only_portal for peer in peers)
    script = (ROOT / "deploy/tools/dev-secrets.sh").read_text(encoding="utf-8")
    assert "for service in inventory leasing notifications portal; do" in script
    assert "create secret generic portal-session --from-literal=session-secret=" in script
