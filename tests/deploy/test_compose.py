"""docker-compose.yml: valid against the Compose Specification's JSON Schema (shipped in
tests/deploy/schemas), and `docker compose up` is the whole story: start order by health and
completion, a migration one-shot per service, topics from deploy/topics.json, one database per
service, monitoring provisioned, every mounted file present, every variable a real setting."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = ("inventory", "leasing", "notifications")
#: Every image built from deploy/docker/Dockerfile: the services and the portal.
IMAGES = (*SERVICES, "portal")
#: The identity settings every service reads once it verifies provider tokens (docs/identity.md);
#: named here until the services' settings classes declare them.
OIDC_SETTINGS = ("OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL")
KEYCLOAK_IMAGE = "quay.io/keycloak/keycloak:26.5.6"
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[^}]+)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: Any, environ: dict[str, str]) -> Any:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expr = match.group("braced") or match.group("plain")
        for sep in (":-", "-", ":?", "?"):
            if sep in expr:
                name, _, default = expr.partition(sep)
                current = environ.get(name)
                if sep.startswith(":") and not current:
                    current = None
                if current is None:
                    if "?" in sep:
                        raise AssertionError(f"${{{expr}}} requires {name}: {default}")
                    return default
                return current
        return environ.get(expr, "")

    return _VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """The file as compose reads it with no variable set (YAML anchors and merges resolved)."""
    return interpolate(raw, {})  # type: ignore[no-any-return]


def test_valid_against_the_compose_specification(kit: ModuleType, compose: dict[str, Any]) -> None:
    jsonschema = kit.need("jsonschema")
    schema = kit.load_json(kit.SCHEMAS / "compose-spec.json")
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)


def test_the_schema_has_teeth(kit: ModuleType, compose: dict[str, Any]) -> None:
    jsonschema = kit.need("jsonschema")
    schema = kit.load_json(kit.SCHEMAS / "compose-spec.json")
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = {
        **compose,
        "services": {
            **compose["services"],
            "kafka": {**compose["services"]["kafka"], "helthcheck": {}},
        },
    }
    assert list(validator.iter_errors(broken))
    broken = {
        **compose,
        "services": {"x": {"image": "a", "depends_on": {"y": {"condition": "service_done"}}}},
    }
    assert list(validator.iter_errors(broken))


def test_docker_compose_config_accepts_it_when_the_cli_exists() -> None:
    """The compose CLI's own check, where the plugin exists (not on the project's machines)."""
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("the docker compose CLI is not installed here; the JSON Schema check stands in")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_start_order_is_by_health_and_completion(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, condition in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if condition["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not a one-shot"
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["kafka-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for service in SERVICES:
        app = services[service]
        migrate = services[f"{service}-migrate"]
        assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        needs = app["depends_on"]
        assert needs[f"{service}-migrate"]["condition"] == "service_completed_successfully"
        assert needs["kafka-topics"]["condition"] == "service_completed_successfully"
        assert "readyz" in " ".join(app["healthcheck"]["test"])
        assert app["command"] == ["serve"]


def test_the_portal_runs_on_the_public_apis_with_its_own_database_and_login(
    kit: ModuleType, compose: dict[str, Any]
) -> None:
    """The portal as `make run` has it (deploy/services.json: port 8000), on the three APIs by
    their compose names, after its migration job, with the same identity provider as them."""
    services = compose["services"]
    portal, migrate = services["portal"], services["portal-migrate"]
    assert portal["command"] == ["serve"] and portal["ports"] == ["8000:8000"]
    assert "readyz" in " ".join(portal["healthcheck"]["test"])
    launcher = {s["name"]: s for s in kit.load_json(kit.DEPLOY / "services.json")["services"]}
    assert launcher["portal"]["port"] == 8000
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert migrate["environment"] == portal["environment"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    needs = portal["depends_on"]
    assert needs["portal-migrate"]["condition"] == "service_completed_successfully"
    for api in ("keycloak", *SERVICES):
        assert needs[api]["condition"] == "service_healthy", api
    assert "kafka-topics" not in needs and "kafka" not in needs
    env = portal["environment"]
    for api in SERVICES:
        # Every image listens on 8000 inside its container (deploy/docker/entrypoint.sh).
        assert env[f"PORTAL_{api.upper()}_URL"] == f"http://{api}:8000"
    inventory = services["inventory"]["environment"]
    assert env["PORTAL_OIDC_ISSUER"] == inventory["INVENTORY_OIDC_ISSUER"]
    assert env["PORTAL_OIDC_JWKS_URL"] == inventory["INVENTORY_OIDC_JWKS_URL"]
    assert env["PORTAL_OIDC_INTERNAL_ISSUER"] == "http://keycloak:8080/realms/fabrique"
    assert env["PORTAL_PUBLIC_BASE_URL"] == "http://localhost:8000"
    # The session secret: the portal's development value (it says so), which the portal refuses
    # in prod; a real one comes from the environment (next test).
    from portal.settings import DEV_SESSION_SECRET, PortalSettings

    assert env["PORTAL_SESSION_SECRET"] == DEV_SESSION_SECRET.replace("$", "$$")
    assert DEV_SESSION_SECRET.startswith("dev-only-")
    with pytest.raises(ValueError, match="session_secret"):
        PortalSettings(environment="prod", session_secret=env["PORTAL_SESSION_SECRET"])


def test_the_portal_session_secret_comes_from_the_environment(raw: dict[str, Any]) -> None:
    compose = interpolate(raw, {"PORTAL_SESSION_SECRET": "p" * 40})
    assert compose["services"]["portal"]["environment"]["PORTAL_SESSION_SECRET"] == "p" * 40


def test_keycloak_accepts_the_compose_portals_redirect(compose: dict[str, Any]) -> None:
    """The login's redirect URI (under PORTAL_PUBLIC_BASE_URL) is one the realm's
    fabrique-portal client allows: Keycloak matches a registered `http://localhost/*` or
    `http://127.0.0.1/*` whatever the port (loopback, RFC 8252; docs/identity.md)."""
    realm = json.loads((ROOT / "deploy/keycloak/fabrique-realm.json").read_text(encoding="utf-8"))
    client = next(c for c in realm["clients"] if c["clientId"] == "fabrique-portal")
    base = compose["services"]["portal"]["environment"]["PORTAL_PUBLIC_BASE_URL"]
    scheme, _, rest = base.partition("://")
    host = rest.partition(":")[0]
    candidates = {f"{base}/auth/callback"}
    if host in ("localhost", "127.0.0.1"):
        candidates.add(f"{scheme}://{host}/auth/callback")
    allowed = [u for u in client["redirectUris"]]
    assert any(
        re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), uri)
        for pattern in allowed
        for uri in candidates
    ), (base, allowed)


def test_topics_come_from_deploy_topics_json(kit: ModuleType, compose: dict[str, Any]) -> None:
    job = compose["services"]["kafka-topics"]
    assert "./deploy/topics.json:/opt/fabrique/topics.json:ro" in job["volumes"]
    script = kit.DEPLOY / "compose" / "create_topics.py"
    assert f"./{script.relative_to(ROOT)}:/opt/fabrique/create_topics.py:ro" in job["volumes"]
    assert job["command"][1] == "/opt/fabrique/create_topics.py"
    assert "ensure_topics_sync" in script.read_text(encoding="utf-8")


def test_the_topic_job_against_a_real_broker(
    live_platform: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy/compose/create_topics.py on the platform's broker (its topics already exist):
    every topic reported with the partition count of deploy/topics.json."""
    spec = importlib.util.spec_from_file_location(
        "create_topics", ROOT / "deploy" / "compose" / "create_topics.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    bootstrap = live_platform.broker.bootstrap
    assert module.main(["--bootstrap", bootstrap, str(ROOT / "deploy" / "topics.json")]) == 0
    out = capsys.readouterr().out
    assert "inventory.unit.events" in out and "partitions=6 (exists)" in out


def test_one_database_and_role_per_service(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    init = ROOT / "deploy" / "compose" / "postgres" / "init-databases.sh"
    assert any(
        v.startswith("./deploy/compose/postgres/init-databases.sh:/docker-entrypoint-initdb.d/")
        for v in postgres["volumes"]
    )
    text = init.read_text(encoding="utf-8")
    assert "for service in inventory leasing notifications portal keycloak" in text
    keycloak = compose["services"]["keycloak"]["environment"]
    assert keycloak["KC_DB"] == "postgres"
    assert keycloak["KC_DB_URL"] == "jdbc:postgresql://postgres:5432/keycloak"
    assert keycloak["KC_DB_USERNAME"] == "keycloak"
    assert postgres["environment"]["KEYCLOAK_DB_PASSWORD"] == keycloak["KC_DB_PASSWORD"]
    health = " ".join(postgres["healthcheck"]["test"])
    assert "'keycloak'" in health and "'portal'" in health and "grep -qx 5" in health
    for service in IMAGES:
        url = compose["services"][service]["environment"][f"{service.upper()}_DATABASE_URL"]
        assert url.startswith(f"postgresql+asyncpg://{service}:") and url.endswith(
            f"@postgres:5432/{service}"
        )
        password = url.split(":")[2].split("@")[0]
        assert postgres["environment"][f"{service.upper()}_DB_PASSWORD"] == password


def test_services_are_built_from_the_shared_dockerfile_and_hardened(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            continue
        target = build["args"]["SERVICE"]
        assert target in IMAGES
        assert build["dockerfile"] == "deploy/docker/Dockerfile" and build["context"] == "."
        assert service["image"] == f"fabrique/{target}:local", name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["tmpfs"] == ["/tmp"], name


def test_environment_variables_are_settings_the_services_read(
    kit: ModuleType, compose: dict[str, Any]
) -> None:
    for name, service in compose["services"].items():
        target = (service.get("build") or {}).get("args", {}).get("SERVICE")
        if target is None or "environment" not in service:
            continue
        env = service["environment"]
        oidc = {f"{target.upper()}_{name}" for name in OIDC_SETTINGS}
        unknown = set(env) - kit.settings_env_names(target) - oidc
        assert not unknown, f"{name}: {sorted(unknown)}"
        # No token-signing secret anywhere: the services verify Keycloak's tokens.
        assert not [k for k in env if "JWT" in k], sorted(env)
        assert env[f"{target.upper()}_ENVIRONMENT"] == "dev"
        if target != "portal":  # the portal has no broker: only the public APIs
            assert env[f"{target.upper()}_KAFKA_BOOTSTRAP"] == "kafka:9092"
    notifications = compose["services"]["notifications"]["environment"]
    assert notifications["NOTIFICATIONS_SMTP_HOST"] == "mailpit"
    assert compose["services"]["mailpit"]["image"].startswith("axllent/mailpit:")


def test_the_unsubscribe_key_comes_from_the_environment(raw: dict[str, Any]) -> None:
    compose = interpolate(raw, {"FABRIQUE_UNSUBSCRIBE_SECRET": "s" * 40})
    env = compose["services"]["notifications"]["environment"]
    assert env["NOTIFICATIONS_UNSUBSCRIBE_SECRET"] == "s" * 40


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_ports_do_not_clash(compose: dict[str, Any]) -> None:
    published = [
        str(port).split(":")[0]
        for service in compose["services"].values()
        for port in service.get("ports", [])
    ]
    assert len(published) == len(set(published)), published
    assert {"8000", "8001", "8002", "8003", "3000", "9090", "8025", "9094", "8080"} <= set(
        published
    )


def test_prometheus_and_grafana_are_provisioned(kit: ModuleType, compose: dict[str, Any]) -> None:
    prometheus = kit.load_yaml(kit.DEPLOY / "compose" / "prometheus.yml")
    # One job per service: the job label tells the services apart.
    targets = {
        target: job["job_name"]
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
        if "labels" in config
    }
    assert targets == {f"{s}:8000": s for s in IMAGES}
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert (
        "./deploy/prometheus/rules:/etc/prometheus/rules:ro"
        in compose["services"]["prometheus"]["volumes"]
    )
    grafana = compose["services"]["grafana"]
    assert "./deploy/grafana/dashboards:/etc/grafana/dashboards:ro" in grafana["volumes"]
    provider = kit.load_yaml(
        kit.DEPLOY / "compose" / "grafana" / "provisioning" / "dashboards" / "fabrique.yml"
    )
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (kit.DEPLOY / "grafana" / "dashboards" / Path(home).name).is_file()
    datasource = kit.load_yaml(
        kit.DEPLOY / "compose" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_shell_scripts_parse() -> None:
    sh = shutil.which("sh")
    assert sh is not None
    for script in (
        ROOT / "deploy" / "compose" / "postgres" / "init-databases.sh",
        ROOT / "deploy" / "docker" / "entrypoint.sh",
        ROOT / "deploy" / "tools" / "dev-secrets.sh",
    ):
        assert os.access(script, os.X_OK), f"{script} is not executable"
        done = subprocess.run([sh, "-n", str(script)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{script}: {done.stderr}"


# --------------------------------------------------------------------------------------------
# Keycloak
# --------------------------------------------------------------------------------------------


def test_keycloak_imports_the_committed_realms(kit: ModuleType, compose: dict[str, Any]) -> None:
    from fabkit.localstack.keycloak import KEYCLOAK_VERSION, realm_files

    keycloak = compose["services"]["keycloak"]
    assert keycloak["image"] == KEYCLOAK_IMAGE
    assert keycloak["image"].endswith(f":{KEYCLOAK_VERSION}"), "the local stack runs another"
    command = keycloak["command"]
    assert command[0] == "start" and "--import-realm" in command
    assert "--hostname=http://localhost:8080" in command
    assert "--health-enabled=true" in command
    mounted = {
        volume.split(":")[0]: volume.split(":")[1]
        for volume in keycloak["volumes"]
        if volume.endswith(":ro")
    }
    for realm in realm_files():
        source = f"./{realm.relative_to(ROOT)}"
        assert mounted.get(source) == f"/opt/keycloak/data/import/{realm.name}", source
    assert len(mounted) == len(realm_files())
    # Every ${VAR} of the realm files that has no safe default in compose is set.
    from fabkit.localstack.keycloak import realm_placeholders

    env = keycloak["environment"]
    assert env["FABRIQUE_SMTP_HOST"] == "mailpit" and env["FABRIQUE_SMTP_PORT"] == "1025"
    assert env["FABRIQUE_PROCONNECT_ISSUER"] == "http://localhost:8080/realms/proconnect-sim"
    assert {"FABRIQUE_SMTP_HOST", "FABRIQUE_SMTP_PORT"} <= set(realm_placeholders(realm_files()))
    assert keycloak["depends_on"]["mailpit"]["condition"] == "service_healthy"
    assert keycloak["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_keycloak_health_is_asked_on_the_management_port(compose: dict[str, Any]) -> None:
    check = compose["services"]["keycloak"]["healthcheck"]
    text = " ".join(check["test"])
    assert "/dev/tcp/127.0.0.1/9000" in text and "/health/ready" in text
    assert check["start_period"] and check["retries"] >= 10


def test_every_service_has_the_oidc_env_and_waits_for_keycloak(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        app = compose["services"][service]
        env = app["environment"]
        prefix = service.upper()
        assert env[f"{prefix}_OIDC_ISSUER"] == "http://localhost:8080/realms/fabrique", service
        assert env[f"{prefix}_OIDC_AUDIENCE"] == "fabrique-api", service
        # Inside the network the provider is keycloak:8080, not the issuer's localhost.
        assert env[f"{prefix}_OIDC_JWKS_URL"] == (
            "http://keycloak:8080/realms/fabrique/protocol/openid-connect/certs"
        )
        assert app["depends_on"]["keycloak"]["condition"] == "service_healthy", service


def test_the_issuer_is_the_realm_the_services_trust(compose: dict[str, Any]) -> None:
    """The issuer named in the services' env is the host the keycloak command pins, with the
    realm of deploy/keycloak/fabrique-realm.json."""
    realm = json.loads((ROOT / "deploy" / "keycloak" / "fabrique-realm.json").read_text())
    hostname = next(
        c.split("=", 1)[1]
        for c in compose["services"]["keycloak"]["command"]
        if c.startswith("--hostname=")
    )
    issuer = compose["services"]["inventory"]["environment"]["INVENTORY_OIDC_ISSUER"]
    assert issuer == f"{hostname}/realms/{realm['realm']}"
    published = compose["services"]["keycloak"]["ports"]
    assert f"{hostname.rsplit(':', 1)[1]}:8080" in published
