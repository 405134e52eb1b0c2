"""deploy/k8s: every overlay renders with kustomize and validates against the Kubernetes schemas
(offline, strict), and the manifests keep the platform's promises: hardened pods, probes on
/livez and /readyz, resources, HPAs and PDBs, NetworkPolicies, secrets only by reference,
migrations as Jobs, topics from deploy/topics.json, consumers no more than partitions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = sorted(p.name for p in (ROOT / "deploy" / "k8s" / "overlays").iterdir() if p.is_dir())
SERVICES = ("inventory", "leasing", "notifications")
#: The identity settings every service reads once it verifies provider tokens (docs/identity.md);
#: named here until the services' settings classes declare them.
OIDC_SETTINGS = ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL")
#: The labels the Keycloak Operator gives the pods of the Keycloak CR fabrique-keycloak.
KEYCLOAK_POD = {
    "app": "keycloak",
    "app.kubernetes.io/instance": "fabrique-keycloak",
    "app.kubernetes.io/managed-by": "keycloak-operator",
}
#: Oldest Kubernetes minor the manifests promise to work on, and the newest the validator knows.
K8S_VERSIONS = ("1.30.0", "latest")
#: Custom resources: validated against the hand-written schemas of tests/deploy/schemas/crds.
CRD_GROUPS = ("kafka.strimzi.io", "monitoring.coreos.com", "k8s.keycloak.org")
WORKLOADS = ("Deployment", "StatefulSet", "Job")
#: The Secrets the manifests may reference; they are created outside the repository.
EXPECTED_SECRETS = {
    "notifications-unsubscribe",
    "keycloak-db",
    "inventory-db",
    "leasing-db",
    "leasing-idp-admin",
    "notifications-db",
    "notifications-smtp",
    "portal-db",
    "portal-session",
}

Resource = dict[str, Any]


def by_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def named(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Resource) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def containers(workload: Resource) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def app_deployments(resources: list[Resource]) -> list[Resource]:
    return [
        d
        for d in by_kind(resources, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/name") in SERVICES
    ]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Does a label selector (matchLabels / matchExpressions) select these labels?"""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
    return True


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def config_map_data(resources: list[Resource], container: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref:
            data.update(named(resources, "ConfigMap", ref["name"])["data"])
    return data


# --------------------------------------------------------------------------------------------
# rendering and schemas
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders(rendered: dict[str, list[Resource]], overlay: str) -> None:
    resources = rendered[overlay]
    assert resources, f"overlays/{overlay} rendered nothing"
    namespaces = by_kind(resources, "Namespace")
    assert len(namespaces) == 1
    namespace = namespaces[0]["metadata"]["name"]
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == namespace, resource["metadata"]
    keys = [(r["kind"], r["metadata"]["name"]) for r in resources]
    assert len(keys) == len(set(keys)), "duplicate resources"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_kinds_validate_against_kubernetes_schemas(
    kubernetes_validate: ModuleType, rendered: dict[str, list[Resource]], overlay: str, version: str
) -> None:
    kv = kubernetes_validate
    if version == "latest":
        version = kv.latest_version()
    errors = []
    checked = 0
    for resource in rendered[overlay]:
        if resource["apiVersion"].split("/")[0] in CRD_GROUPS:
            continue
        try:
            kv.validate(resource, version, strict=True)
            checked += 1
        except Exception as exc:
            errors.append(f"{resource['kind']} {resource['metadata']['name']}: {exc}")
    assert not errors, "\n".join(errors)
    assert checked > 20


def test_the_kubernetes_validator_refuses_an_unknown_field(kubernetes_validate: ModuleType) -> None:
    """Strict mode has teeth: a misspelt field is an error, not ignored."""
    kv = kubernetes_validate
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"selectr": {"a": "b"}, "ports": [{"port": 80}]},
    }
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, kv.latest_version(), strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_validate_against_their_schemas(
    kit: ModuleType, rendered: dict[str, list[Resource]], overlay: str
) -> None:
    jsonschema = kit.need("jsonschema")
    kinds = set()
    for resource in rendered[overlay]:
        group, _, version = resource["apiVersion"].rpartition("/")
        if group not in CRD_GROUPS:
            continue
        schema_file = (
            kit.SCHEMAS
            / "crds"
            / f"{resource['kind'].lower()}-{group.split('.')[0]}-{version}.json"
        )
        assert schema_file.is_file(), f"no schema for {resource['kind']} {resource['apiVersion']}"
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
        validator = jsonschema.Draft202012Validator(schema)
        problems = [
            f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(resource)
        ]
        assert not problems, f"{resource['kind']} {resource['metadata']['name']}: {problems}"
        kinds.add(resource["kind"])
    assert {"KafkaTopic", "Kafka", "KafkaNodePool", "ServiceMonitor", "PrometheusRule"} <= kinds
    assert {"Keycloak", "KeycloakRealmImport"} <= kinds


# --------------------------------------------------------------------------------------------
# workloads
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_hardened_and_bounded(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    """Pod Security "restricted" for every workload of the overlay, plus a read-only root
    filesystem, resource requests and a memory limit, and pinned image tags."""
    workloads = [r for r in rendered[overlay] if r["kind"] in WORKLOADS]
    assert workloads
    for workload in workloads:
        where = f"{workload['kind']} {workload['metadata']['name']}"
        spec = pod_spec(workload)
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, where
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
        assert all("hostPath" not in v for v in spec.get("volumes", [])), where
        for container in containers(workload):
            here = f"{where}/{container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, here
            assert sc.get("readOnlyRootFilesystem") is True, here
            assert sc.get("privileged", False) is False, here
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], here
            assert not sc.get("capabilities", {}).get("add"), here
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), here
            assert "memory" in resources.get("limits", {}), here
            image = container["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), here


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_run_as_api_and_worker_processes_with_probes(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    for service in SERVICES:
        prefix = service.upper() + "_"
        for component in ("api", "worker"):
            deployment = named(resources, "Deployment", f"{service}-{component}")
            assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
            spec = pod_spec(deployment)
            assert spec["terminationGracePeriodSeconds"] > 20
            main = spec["containers"][0]
            assert main["image"].startswith(f"fabrique/{service}:")
            assert main["args"] == ["serve"]
            assert main["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
            assert main["livenessProbe"]["httpGet"]["path"] == "/livez"
            assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert main["startupProbe"]["httpGet"]["path"] == "/livez"
            volumes = {v["name"]: v for v in spec["volumes"]}
            assert "emptyDir" in volumes["tmp"]
            assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
            # One process type per container; the flags say which.
            env = env_of(main)
            assert env[f"{prefix}RUN_RELAY"] == "true"
            assert env[f"{prefix}RUN_CONSUMERS"] == ("true" if component == "worker" else "false")
            if service == "notifications":
                assert env["NOTIFICATIONS_RUN_DELIVERY_WORKER"] == (
                    "true" if component == "worker" else "false"
                )
            init = spec["initContainers"][0]
            assert init["args"][0] == "wait-for-migrations" and init["image"] == main["image"]
        job = named(resources, "Job", f"{service}-migrate")
        migrate = pod_spec(job)["containers"][0]
        assert migrate["args"] == ["migrate"]
        assert pod_spec(job)["restartPolicy"] == "Never"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_environment_variables_are_settings_the_services_read(
    kit: ModuleType, rendered: dict[str, list[Resource]], overlay: str
) -> None:
    """A misspelt variable would be silently ignored by pydantic-settings: refuse it here."""
    resources = rendered[overlay]
    known = {
        service: kit.settings_env_names(service)
        | {f"{service.upper()}_{name}" for name in OIDC_SETTINGS}
        for service in (*SERVICES, "portal")  # the portal's migration Job is a Job too
    }
    for deployment in app_deployments(resources) + by_kind(resources, "Job"):
        service = deployment["metadata"]["labels"]["app.kubernetes.io/name"]
        for container in containers(deployment):
            names = set(env_of(container)) | set(config_map_data(resources, container))
            unknown = names - known[service]
            assert not unknown, f"{deployment['metadata']['name']}: {sorted(unknown)}"
            assert f"{service.upper()}_DATABASE_URL" in names
            assert not [n for n in names if "JWT" in n], sorted(names)
            if service == "notifications":
                assert "NOTIFICATIONS_UNSUBSCRIBE_SECRET" in names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_environment_matches_the_overlay(rendered: dict[str, list[Resource]], overlay: str) -> None:
    expected = "dev" if overlay == "dev" else "prod"
    for service in SERVICES:
        maps = [
            cm
            for cm in by_kind(rendered[overlay], "ConfigMap")
            if cm["metadata"]["name"].startswith(f"{service}-config")
        ]
        assert len(maps) == 1
        data = maps[0]["data"]
        assert data[f"{service.upper()}_ENVIRONMENT"] == expected
        assert data[f"{service.upper()}_KAFKA_BOOTSTRAP"] == "fabrique-kafka-bootstrap:9092"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_committed_only_referenced(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    assert not by_kind(resources, "Secret"), "Secrets are created outside the repository"
    referenced = set()
    for workload in (r for r in resources if r["kind"] in WORKLOADS):
        for container in containers(workload):
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    referenced.add(source["secretRef"]["name"])
            for entry in container.get("env", []):
                assert "value" not in entry or "SECRET" not in entry["name"], entry["name"]
    assert referenced <= EXPECTED_SECRETS, referenced - EXPECTED_SECRETS
    needed = {"notifications-unsubscribe", "inventory-db", "leasing-db", "notifications-db"}
    assert needed <= referenced


# --------------------------------------------------------------------------------------------
# scaling: HPAs, PDBs, consumers and partitions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_has_an_autoscaler_and_a_disruption_budget(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in by_kind(resources, "HorizontalPodAutoscaler")
    }
    pdbs = by_kind(resources, "PodDisruptionBudget")
    for deployment in app_deployments(resources):
        name = deployment["metadata"]["name"]
        hpa = hpas.get(name)
        assert hpa is not None, f"{name} has no HorizontalPodAutoscaler"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs if selects(p["spec"]["selector"], labels)]
        assert len(matching) == 1, f"{name}: {len(matching)} PodDisruptionBudgets"
        assert matching[0]["spec"].get("maxUnavailable") == 1
    if overlay == "prod":
        assert all(h["spec"]["minReplicas"] >= 2 for h in hpas.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_consumer_replicas_stop_at_the_partition_count(
    kit: ModuleType, rendered: dict[str, list[Resource]], overlay: str
) -> None:
    """Consumers are in one group per service: replicas beyond the partitions stand idle."""
    partitions = {t["name"]: t["partitions"] for t in kit.topics()}
    resources = rendered[overlay]
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in by_kind(resources, "HorizontalPodAutoscaler")
    }
    for service in SERVICES:
        worker = named(resources, "Deployment", f"{service}-worker")
        consumed = worker["metadata"]["annotations"]["fabrique.paris/consumes"].split(",")
        assert consumed and set(consumed) <= set(partitions), consumed
        assert all(not t.startswith(f"{service}.") for t in consumed), "a service consumes others"
        assert hpas[f"{service}-worker"]["spec"]["maxReplicas"] <= max(
            partitions[t] for t in consumed
        )


# --------------------------------------------------------------------------------------------
# network policies
# --------------------------------------------------------------------------------------------


def policies_for(resources: list[Resource], labels: dict[str, str]) -> list[Resource]:
    return [
        p for p in by_kind(resources, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)
    ]


def egress_ports(policies: list[Resource]) -> set[int]:
    return {
        port["port"]
        for policy in policies
        for rule in policy["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_what_must_talk_talks(rendered: dict[str, list[Resource]], overlay: str) -> None:
    resources = rendered[overlay]
    for deployment in app_deployments(resources):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service = labels["app.kubernetes.io/name"]
        policies = policies_for(resources, labels)
        names = {p["metadata"]["name"] for p in policies}
        assert "fabrique-default-deny" in names, name
        assert {"Ingress", "Egress"} <= {t for p in policies for t in p["spec"]["policyTypes"]}
        ports = egress_ports(policies)
        assert {53, 9092, 5432} <= ports, f"{name}: {ports}"
        # Its own database only.
        db_peers = [
            peer["podSelector"]["matchLabels"]
            for p in policies
            for rule in p["spec"].get("egress", [])
            for peer in rule.get("to", [])
            if any(port["port"] == 5432 for port in rule.get("ports", []))
        ]
        assert db_peers == [{"fabrique.paris/postgres-for": service}], f"{name}: {db_peers}"
        internet = any(
            "ipBlock" in peer
            for p in policies
            for rule in p["spec"].get("egress", [])
            for peer in rule.get("to", [])
        )
        if service == "notifications" and labels["app.kubernetes.io/component"] == "worker":
            assert internet and {443, 80, 587} <= ports, "webhooks and SMTP"
        else:
            assert not internet, f"{name} must not reach the internet"
        # Prometheus may scrape every process.
        scrape = [
            rule
            for p in policies
            for rule in p["spec"].get("ingress", [])
            for peer in rule.get("from", [])
            if peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            == "prometheus"
        ]
        assert scrape and all(r["ports"] == [{"protocol": "TCP", "port": 8000}] for r in scrape)
    if overlay == "dev":
        for service in SERVICES:
            db = policies_for(resources, {"fabrique.paris/postgres-for": service})
            peers = [
                peer for p in db for rule in p["spec"].get("ingress", []) for peer in rule["from"]
            ]
            assert peers == [{"podSelector": {"matchLabels": {"fabrique.paris/service": service}}}]


# --------------------------------------------------------------------------------------------
# Kafka topics, services, monitoring
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_are_deploy_topics_json(
    kit: ModuleType, rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    kafka = named(resources, "Kafka", "fabrique")
    brokers = sum(p["spec"]["replicas"] for p in by_kind(resources, "KafkaNodePool"))
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    found = {t["metadata"]["name"]: t for t in by_kind(resources, "KafkaTopic")}
    wanted = {t["name"]: t for t in kit.topics()}
    assert set(found) == set(wanted)
    for name, topic in wanted.items():
        spec = found[name]["spec"]
        assert found[name]["metadata"]["labels"]["strimzi.io/cluster"] == "fabrique"
        assert spec["partitions"] == topic["partitions"], name
        assert spec["config"]["retention.ms"] == topic["retention_ms"], name
        assert spec["replicas"] <= brokers
        assert spec["config"]["min.insync.replicas"] <= spec["replicas"]
    if overlay == "prod":
        assert brokers >= 3 and all(t["spec"]["replicas"] == 3 for t in found.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_and_service_monitor_reach_every_process(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    monitors = by_kind(resources, "ServiceMonitor")
    assert len(monitors) == 1
    monitor = monitors[0]["spec"]
    assert monitor["endpoints"][0]["path"] == "/metrics"
    # The job label tells the services apart (the metrics every service has share their names).
    assert monitor["jobLabel"] == "app.kubernetes.io/name"
    targets = {r["targetLabel"] for r in monitor["endpoints"][0]["relabelings"]}
    assert "process" in targets
    services = by_kind(resources, "Service")
    for deployment in app_deployments(resources):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        scraped = [
            s
            for s in services
            if selects({"matchLabels": s["spec"]["selector"]}, labels)
            and selects(monitor["selector"], s["metadata"]["labels"])
        ]
        assert len(scraped) == 1, deployment["metadata"]["name"]
        assert scraped[0]["spec"]["ports"][0]["name"] == monitor["endpoints"][0]["port"]
    rules = by_kind(resources, "PrometheusRule")
    assert rules and rules[0]["spec"]["groups"]
    dashboards = [
        c
        for c in by_kind(resources, "ConfigMap")
        if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    assert dashboards
    for dashboard in dashboards:
        for text in dashboard["data"].values():
            json.loads(text)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_pod_security(rendered: dict[str, list[Resource]], overlay: str) -> None:
    labels = by_kind(rendered[overlay], "Namespace")[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] in ("baseline", "restricted")
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


# --------------------------------------------------------------------------------------------
# Keycloak (the operator's resources)
# --------------------------------------------------------------------------------------------


def _generator() -> ModuleType:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "generate_k8s", ROOT / "deploy" / "tools" / "generate_k8s.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _committed_realm(name: str) -> dict[str, Any]:
    path = ROOT / "deploy" / "keycloak" / f"{name}-realm.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keycloak_runs_on_postgres_with_settings_from_a_secret(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    from fabkit.localstack.keycloak import KEYCLOAK_VERSION

    keycloak = named(rendered[overlay], "Keycloak", "fabrique-keycloak")["spec"]
    assert keycloak["image"] == f"quay.io/keycloak/keycloak:{KEYCLOAK_VERSION}"
    db = keycloak["db"]
    assert db["vendor"] == "postgres"
    # Nothing about the database is written down but its kind: all from keycloak-db.
    assert not {"host", "database", "url", "port"} & set(db), db
    assert db["usernameSecret"] == {"name": "keycloak-db", "key": "username"}
    assert db["passwordSecret"] == {"name": "keycloak-db", "key": "password"}
    options = {o["name"]: o for o in keycloak["additionalOptions"]}
    assert options["db-url-host"]["secret"] == {"name": "keycloak-db", "key": "host"}
    assert options["db-url-database"]["secret"] == {"name": "keycloak-db", "key": "database"}
    for option in keycloak["additionalOptions"]:
        assert "password" not in option["name"] and "secret" not in option["name"], option
    assert keycloak["bootstrapAdmin"]["user"]["secret"] == "keycloak-admin"
    assert keycloak["resources"]["requests"]["memory"] and keycloak["resources"]["limits"]["memory"]
    assert keycloak["hostname"]["hostname"].startswith("https://" if overlay == "prod" else "http")
    if overlay == "prod":
        assert keycloak["instances"] >= 2 and keycloak["proxy"]["headers"] == "xforwarded"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_get_the_issuer_audience_and_keys_url(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    keycloak = named(resources, "Keycloak", "fabrique-keycloak")
    issuer = f"{keycloak['spec']['hostname']['hostname']}/realms/fabrique"
    port = keycloak["spec"]["http"]["httpPort"]
    jwks = (
        f"http://{keycloak['metadata']['name']}-service:{port}"
        "/realms/fabrique/protocol/openid-connect/certs"
    )
    for deployment in app_deployments(resources):
        service = deployment["metadata"]["labels"]["app.kubernetes.io/name"]
        prefix = service.upper()
        for container in containers(deployment):
            data = config_map_data(resources, container)
            where = f"{deployment['metadata']['name']}/{container['name']}"
            assert data[f"{prefix}_OIDC_ISSUER"] == issuer, where
            assert data[f"{prefix}_OIDC_AUDIENCE"] == "fabrique-api", where
            assert data[f"{prefix}_OIDC_JWKS_URL"] == jwks, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_realm_import_is_the_committed_realm_and_prod_has_no_demo_account(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    imported = named(resources, "KeycloakRealmImport", "fabrique")["spec"]
    assert imported["keycloakCRName"] == "fabrique-keycloak"
    committed = _committed_realm("fabrique")
    realm = imported["realm"]
    placeholders = imported["placeholders"]
    # ProConnect's client id and secret come from a Kubernetes Secret at import.
    assert placeholders["FABRIQUE_PROCONNECT_CLIENT_ID"]["secret"] == {
        "name": "keycloak-proconnect",
        "key": "client-id",
    }
    assert placeholders["FABRIQUE_PROCONNECT_CLIENT_SECRET"]["secret"] == {
        "name": "keycloak-proconnect",
        "key": "client-secret",
    }
    text = json.dumps(realm)
    from fabkit.localstack.keycloak import realm_placeholders

    assert set(realm_placeholders([ROOT / "deploy/keycloak/fabrique-realm.json"])) <= set(
        placeholders
    )
    if overlay == "dev":
        assert realm == committed
        simulator = named(resources, "KeycloakRealmImport", "proconnect-sim")["spec"]
        assert simulator["realm"] == _committed_realm("proconnect-sim")
        return
    assert realm == _generator().production_realm(committed)
    assert "users" not in realm and realm["realm"] == "fabrique"
    assert all("secret" not in c for c in realm["clients"]), "demo client secrets"
    assert "dev-" not in text and "fabrique-demo-2026" not in text
    assert ":127.0.0.1" not in text and "proconnect-sim" not in text
    imports = {r["metadata"]["name"] for r in by_kind(resources, "KeycloakRealmImport")}
    assert imports == {"fabrique"}, "the simulated ProConnect is for development"
    provider = next(p for p in realm["identityProviders"] if p["alias"] == "proconnect")
    assert provider["config"]["clientId"] == "${FABRIQUE_PROCONNECT_CLIENT_ID}"
    assert provider["config"]["clientSecret"] == "${FABRIQUE_PROCONNECT_CLIENT_SECRET}"
    portal = next(c for c in realm["clients"] if c["clientId"] == "fabrique-portal")
    assert all(uri.startswith("https://") for uri in portal["redirectUris"])
    # Everything else is the committed realm: same roles, clients, mappers and policies.
    assert [c["clientId"] for c in realm["clients"]] == [
        c["clientId"] for c in committed["clients"]
    ]
    assert realm["roles"] == committed["roles"]
    assert realm["passwordPolicy"] == committed["passwordPolicy"]
    assert realm["bruteForceProtected"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_and_the_portal_reach_keycloak_and_nothing_else_does(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    policies = by_kind(resources, "NetworkPolicy")
    to_keycloak = [
        (p, rule)
        for p in policies
        for rule in p["spec"].get("egress", [])
        if any(selects(peer.get("podSelector", {}), KEYCLOAK_POD) for peer in rule.get("to", []))
        and {"protocol": "TCP", "port": 8080} in rule.get("ports", [])
    ]
    for deployment in app_deployments(resources):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(selects(p["spec"]["podSelector"], labels) for p, _ in to_keycloak), deployment[
            "metadata"
        ]["name"]
    assert any(
        selects(p["spec"]["podSelector"], {"fabrique.paris/service": "portal"})
        for p, _ in to_keycloak
    ), "the portal"
    keycloak = policies_for(resources, KEYCLOAK_POD)
    assert keycloak and all(
        {"Ingress", "Egress"} <= set(p["spec"]["policyTypes"]) for p in keycloak
    )
    http_from = [
        peer
        for p in keycloak
        for rule in p["spec"].get("ingress", [])
        if {"protocol": "TCP", "port": 8080} in rule.get("ports", [])
        for peer in rule["from"]
    ]
    for who in (*SERVICES, "portal"):
        assert any(
            selects(peer.get("podSelector", {}), {"fabrique.paris/service": who})
            for peer in http_from
            if "podSelector" in peer
        ), who
    assert not any(
        selects(peer.get("podSelector", {}), {"fabrique.paris/service": "intruder"})
        for peer in http_from
        if "podSelector" in peer
    )
    # The operator's own policy (any pod may reach Keycloak) is off: these are the rules.
    assert named(resources, "Keycloak", "fabrique-keycloak")["spec"]["networkPolicy"] == {
        "enabled": False
    }
    assert 5432 in egress_ports(keycloak)
    if overlay == "dev":
        db = policies_for(resources, {"fabrique.paris/postgres-for": "keycloak"})
        peers = [peer for p in db for rule in p["spec"].get("ingress", []) for peer in rule["from"]]
        assert peers and all(selects(peer["podSelector"], KEYCLOAK_POD) for peer in peers)


def test_the_keycloak_schema_has_teeth(kit: ModuleType) -> None:
    jsonschema = kit.need("jsonschema")
    schema = json.loads((kit.SCHEMAS / "crds" / "keycloak-k8s-v2alpha1.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    good = {
        "apiVersion": "k8s.keycloak.org/v2alpha1",
        "kind": "Keycloak",
        "metadata": {"name": "kc"},
        "spec": {"db": {"vendor": "postgres"}, "hostname": {"hostname": "https://id.example"}},
    }
    assert not list(validator.iter_errors(good))
    misspelt = {**good, "spec": {**good["spec"], "hostnme": {}}}
    assert list(validator.iter_errors(misspelt))
    literal = {**good, "spec": {**good["spec"], "db": {"vendor": "postgre"}}}
    assert list(validator.iter_errors(literal))
