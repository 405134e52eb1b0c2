"""The images, without a Docker engine: the Dockerfile's structure (multi-stage, non-root, no
build tools in the final stage, locked dependencies), the build context .dockerignore lets in,
a rehearsal of its uv steps for each service into a fresh environment (offline, from the uv
cache the bootstrap filled) with every import of the service provided there, the entry point's
commands, and the init containers' migration gate."""

from __future__ import annotations

import ast
import fnmatch
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from fabkit.testing import fail_or_skip

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
SERVICES = ("inventory", "leasing", "notifications", "portal")
#: The services that own a database (the portal keeps only web sessions, in signed cookies).
WITH_DATABASE = ("inventory", "leasing", "notifications")
#: Distributions of the dev group that must never reach an image.
DEV_ONLY = ("pytest", "ruff", "mypy", "schemathesis", "import_linter", "aiosmtpd", "hypothesis")


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not current):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def stages() -> list[tuple[str, list[tuple[str, str]]]]:
    found: list[tuple[str, list[tuple[str, str]]]] = []
    for op, args in instructions():
        if op == "FROM":
            name = args.split(" AS ")[-1].strip() if " AS " in args else args
            found.append((name, []))
        elif found:
            found[-1][1].append((op, args))
    return found


def test_multi_stage_with_a_runtime_stage_free_of_build_tools() -> None:
    names = [name for name, _ in stages()]
    assert names == ["uv", "assets", "build", "runtime"]
    runtime = dict(stages())["runtime"]
    text = " ".join(args for _, args in runtime)
    for tool in ("apt-get install", "gcc", "build-essential", "uv sync", "/uv", "npm", "node"):
        assert tool not in text, f"{tool!r} in the runtime stage"
    copies = [args for op, args in runtime if op == "COPY"]
    assert "--from=build /app/venv /app/venv" in copies
    assert ("USER", "10001:10001") in runtime
    assert ("ENTRYPOINT", '["/usr/local/bin/fabrique"]') in runtime
    assert ("CMD", '["serve"]') in runtime


def uv_sync_commands() -> list[str]:
    build = dict(stages())["build"]
    return [
        re.sub(r"^--mount=\S+\s+", "", args)
        for op, args in build
        if op == "RUN" and "uv sync" in args
    ]


def test_dependencies_come_from_the_lock_without_dev_tools() -> None:
    commands = uv_sync_commands()
    assert len(commands) == 2
    for command in commands:
        assert "--locked" in command and "--no-dev" in command
        assert '--package "fabrique-${SERVICE}"' in command
    assert "--no-install-workspace" in commands[0]
    assert "--no-editable" in commands[1]


def test_every_workspace_member_is_in_the_dependency_layer() -> None:
    """`uv sync --locked` reads every member's pyproject.toml: a new member must be copied."""
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members = workspace["tool"]["uv"]["workspace"]["members"]
    copies = [args for op, args in dict(stages())["build"] if op == "COPY"]
    for member in members:
        assert f"{member}/pyproject.toml {member}/" in copies, member
    allowed = re.search(
        r'case "\$\{SERVICE\}" in ([\w|]+)\)', DOCKERFILE.read_text(encoding="utf-8")
    )
    assert allowed is not None
    assert set(allowed.group(1).split("|")) == set(SERVICES)
    assert {Path(m).name for m in members if m.startswith("services/")} == set(SERVICES)


def test_portal_assets_come_from_the_npm_lock_and_only_leaflet_dist_is_kept() -> None:
    """The portal serves Leaflet itself: `npm ci` from package.json + package-lock.json in a
    stage of its own, runtime dependencies only (axe-core is for the tests), and only
    leaflet/dist (and its licence) copied, to where portal.main looks for it."""
    assets = dict(stages())["assets"]
    copies = [args for op, args in assets if op == "COPY"]
    assert copies == ["services/portal/package.json services/portal/package-lock.json ./"]
    runs = " ".join(args for op, args in assets if op == "RUN")
    assert "npm ci --omit=dev --ignore-scripts" in runs
    assert "npm install" not in runs
    lock = json.loads((ROOT / "services/portal/package-lock.json").read_text(encoding="utf-8"))
    runtime_packages = {
        path.removeprefix("node_modules/")
        for path, meta in lock["packages"].items()
        if path and not meta.get("dev")
    }
    assert runtime_packages == {"leaflet"}, runtime_packages
    build = dict(stages())["build"]
    from_assets = [args for op, args in build if op == "COPY" and "--from=assets" in args]
    assert from_assets == [
        "--from=assets /assets/node_modules/leaflet/dist /tmp/leaflet/dist",
        "--from=assets /assets/node_modules/leaflet/LICENSE /tmp/leaflet/LICENSE",
    ]
    placing = next(args for op, args in build if op == "RUN" and "/tmp/leaflet" in args)
    assert '"${SERVICE}" = portal' in placing
    assert '"${site}/node_modules/leaflet/"' in placing
    # portal.main looks for node_modules next to its package, i.e. in site-packages once the
    # portal is installed as a wheel: the same place the build puts it.
    from portal import main as portal_main

    beside_the_package = Path(portal_main.__file__).parent.parent / "node_modules"
    assert beside_the_package / "leaflet" / "dist" == portal_main.LEAFLET_DIST
    runtime = dict(stages())["runtime"]
    assert not [args for op, args in runtime if op == "COPY" and "assets" in args]


# --------------------------------------------------------------------------------------------
# .dockerignore
# --------------------------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip("/")
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        else:
            regex += (
                fnmatch.translate(pattern[i])
                .removeprefix("(?s:")
                .removesuffix(")\\Z")
                .replace(".*", "[^/]*")
            )
            i += 1
    return re.compile(f"^{regex}(?:/.*)?$", re.S)


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path (or a parent of it) decides."""
    verdict = False
    for negated, regex in rules:
        if regex.match(relative):
            verdict = not negated
    return verdict


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), _pattern(line.lstrip("!"))))
    return rules


def context_files(rules: list[tuple[bool, re.Pattern[str]]]) -> Iterator[str]:
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith((".git/", ".venv/", ".cache/")):
            continue
        if path.is_file() and not ignored(relative, rules):
            yield relative


def test_build_context_holds_the_sources_and_nothing_else() -> None:
    rules = dockerignore()
    for needed in (
        "pyproject.toml",
        "uv.lock",
        "shared/pyproject.toml",
        "shared/fabkit/__init__.py",
        "services/inventory/inventory/main.py",
        "services/inventory/inventory/migrations/env.py",
        "services/inventory/inventory/seed/paris_sites.csv",
        "deploy/docker/entrypoint.sh",
        "deploy/docker/wait_for_migrations.py",
    ):
        assert not ignored(needed, rules), needed
    for unwanted in (
        ".git/HEAD",
        ".venv/bin/python",
        ".cache/kafka/4.1.1/libs/kafka.jar",
        ".run/inventory.db",
        "services/inventory/tests/test_api.py",
        "shared/tests/test_events.py",
        "shared/fabkit/__pycache__/events.cpython-311.pyc",
        "tests/e2e/conftest.py",
        "docs/operations.md",
        "deploy/k8s/base/kustomization.yaml",
        "README.md",
        "services/portal/node_modules/leaflet/dist/leaflet.js",
    ):
        assert ignored(unwanted, rules), unwanted
    copied = {
        args.split()[-2] for op, args in instructions() if op == "COPY" and "--from" not in args
    }
    for source in copied:
        source = source.replace("${SERVICE}", "inventory").rstrip("/")
        assert (ROOT / source).exists(), source
        assert not ignored(source, rules), f"COPY {source} is excluded by .dockerignore"


# --------------------------------------------------------------------------------------------
# rehearsal of the build's uv steps
# --------------------------------------------------------------------------------------------


def _copy_context(
    paths: list[str], destination: Path, rules: list[tuple[bool, re.Pattern[str]]]
) -> None:
    for source in paths:
        origin = ROOT / source
        if origin.is_file():
            (destination / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, destination / source)
            continue
        for path in origin.rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and not ignored(relative, rules):
                (destination / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination / relative)


def rehearse(service: str, work: Path) -> Path:
    """The build stage replayed for one service: the same COPY order and `uv sync` commands,
    offline, into a fresh virtual environment; returns its site-packages."""
    uv = shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is not installed")
    src, venv = work / "src", work / "venv"
    src.mkdir(parents=True)
    rules = dockerignore()
    env = {
        **os.environ,
        "UV_OFFLINE": "1",  # only what the bootstrap's `uv sync --locked` put in the cache
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON": sys._base_executable,  # the interpreter the workspace runs on
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_LINK_MODE": "hardlink",  # the image copies; linking from the cache is faster here
        "UV_NO_PROGRESS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    syncs = iter(uv_sync_commands())
    for op, args in dict(stages())["build"]:
        if op == "COPY" and "--from" not in args:
            *sources, _ = args.replace("${SERVICE}", service).split()
            _copy_context(sources, src, rules)
        elif op == "RUN" and "uv sync" in args:
            command = shlex.split(next(syncs).replace("${SERVICE}", service))
            done = subprocess.run(
                [uv, *command[1:]], cwd=src, env=env, capture_output=True, text=True,
                check=False, timeout=300,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed offline:\n{done.stderr}")
    return next(venv.glob("lib/python3*/site-packages"))


@pytest.fixture(scope="module")
def image_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """site-packages of the inventory image, rehearsed (one service is enough to exercise the
    build's mechanics; every service's dependency closure is checked from the lock below)."""
    try:
        return rehearse("inventory", tmp_path_factory.mktemp("image-inventory"))
    except RuntimeError as exc:
        fail_or_skip(str(exc))


def test_rehearsed_portal_image_serves_leaflet_from_where_the_build_puts_it(
    tmp_path: Path,
) -> None:
    """The portal's build replayed: its wheels into a fresh environment, then the Dockerfile's
    own Leaflet step (its RUN, by sh, paths moved into the rehearsal) over the npm package the
    bootstrap installed; the installed portal's LEAFLET_DIST then holds leaflet.js, and the
    app mounts it at /assets/leaflet/."""
    leaflet = ROOT / "services/portal/node_modules/leaflet"
    if not (leaflet / "dist" / "leaflet.js").is_file():
        fail_or_skip("services/portal/node_modules is missing: scripts/bootstrap.sh runs npm ci")
    try:
        site = rehearse("portal", tmp_path)
    except RuntimeError as exc:
        fail_or_skip(str(exc))
    venv = site.parents[2]
    staged = tmp_path / "leaflet"
    shutil.copytree(leaflet / "dist", staged / "dist")
    shutil.copy2(leaflet / "LICENSE", staged / "LICENSE")
    step = next(
        args for op, args in dict(stages())["build"] if op == "RUN" and "/tmp/leaflet" in args
    )
    script = step.replace("/app/venv", str(venv)).replace("/tmp/leaflet", str(staged))
    done = subprocess.run(
        ["sh", "-c", script], env={**os.environ, "SERVICE": "portal"},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (site / "node_modules/leaflet/dist/leaflet.js").is_file()
    assert (site / "node_modules/leaflet/LICENSE").is_file()
    assert not (site / "node_modules/axe-core").exists()
    assert not staged.exists(), "the staging copy is removed"
    check = (
        "from pathlib import Path\n"
        "from portal.main import LEAFLET_DIST, create_app\n"
        "routes = create_app().routes\n"
        "mount = next(r for r in routes if getattr(r, 'path', '') == '/assets/leaflet')\n"
        "assert Path(mount.app.directory) == LEAFLET_DIST, mount.app.directory\n"
        "assert (LEAFLET_DIST / 'leaflet.js').stat().st_size > 100_000\n"
        "print(LEAFLET_DIST)\n"
    )
    served = subprocess.run(
        [str(venv / "bin" / "python"), "-c", check], cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr[-2000:]
    assert served.stdout.strip() == str(site / "node_modules/leaflet/dist")
    # Any other service: the step leaves its environment alone.
    other = subprocess.run(
        ["sh", "-c", step.replace("/app/venv", str(venv)).replace("/tmp/leaflet", str(staged))],
        env={**os.environ, "SERVICE": "inventory"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr


def locked_distributions(service: str) -> set[str]:
    """The distributions `uv sync --locked --no-dev --package fabrique-<service>` installs."""
    uv = shutil.which("uv")
    if uv is None:
        fail_or_skip("uv is not installed")
    done = subprocess.run(
        [uv, "export", "--locked", "--no-dev", "--package", f"fabrique-{service}"]
        + ["--no-hashes", "--no-header"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = {
        _normal(m.group(1))
        for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", done.stdout, re.M)
    }
    members = {
        _normal(m.group(1).rsplit("/", 1)[-1])
        for m in re.finditer(r"^-e \./(\S+)$", done.stdout, re.M)
    }
    # Workspace members appear by folder: shared -> fabkit, services/<name> -> fabrique-<name>.
    return names | {"fabkit" if m == "shared" else f"fabrique_{m}" for m in members}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def distributions(site: Path) -> dict[str, set[str]]:
    """{normalised distribution name: the top-level modules it installs}."""
    found: dict[str, set[str]] = {}
    for info in site.glob("*.dist-info"):
        name = _normal(info.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        top = info / "top_level.txt"
        if top.is_file():
            modules = set(top.read_text(encoding="utf-8").split())
        else:
            modules = set()
            for line in (info / "RECORD").read_text(encoding="utf-8").splitlines():
                first = line.split(",")[0].split("/")[0]
                if first.endswith(".dist-info") or first.startswith(("..", "__")):
                    continue
                modules.add(first.removesuffix(".py").split(".")[0])
        found[name] = modules
    return found


def imported_modules(
    package: Path, skip: tuple[str, ...] = (), only: tuple[str, ...] = ()
) -> dict[str, str]:
    """{top-level module: a file importing it} for absolute imports in a package's code."""
    found: dict[str, str] = {}
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        if relative.startswith(skip) or (only and relative not in only):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], f"{package.name}/{relative}")
    return found


def test_rehearsed_image_has_the_service_as_wheels(image_site: Path) -> None:
    installed = set(distributions(image_site))
    assert {"fabrique_inventory", "fabkit", "uvicorn", "alembic", "asyncpg"} <= installed
    assert not installed & set(DEV_ONLY), installed & set(DEV_ONLY)
    assert installed == locked_distributions("inventory") | {"fabrique_inventory", "fabkit"}
    assert (image_site / "inventory" / "migrations" / "env.py").is_file(), "migrations ship"
    assert (image_site / "inventory" / "seed" / "paris_sites.csv").is_file(), "data files ship"
    linked = [p.name for p in image_site.glob("*.pth") if "/src/" in p.read_text(encoding="utf-8")]
    assert not linked, f"installed editable (pointing at the sources): {linked}"


def test_rehearsed_image_has_no_launcher_and_no_test_helpers(image_site: Path) -> None:
    """They ship in fabkit-devtools (a dev dependency), not in fabkit's wheel."""
    for dev_only in (
        "fabkit/testing.py",
        "fabkit/oidc_testing.py",
        "fabkit/localstack/platform.py",
        "fabkit/localstack/cli.py",
        "fabkit/localstack/keycloak.py",
    ):
        assert not (image_site / dev_only).exists(), f"{dev_only} is in the image"
    assert (image_site / "fabkit" / "localstack" / "kafka.py").is_file(), "the topic job needs it"
    assert not list(image_site.glob("fabkit_devtools-*.dist-info"))


@pytest.mark.parametrize("service", SERVICES)
def test_every_module_the_service_imports_is_in_its_image(service: str) -> None:
    """A service that imports a package it does not declare works in the workspace (the root
    project installs everything) and dies in its image: catch it here, from the lock."""
    locked = locked_distributions(service)
    assert not locked & set(DEV_ONLY), f"dev tools in the {service} image: {locked & set(DEV_ONLY)}"
    others = {f"fabrique_{o}" for o in SERVICES if o != service}
    assert not others & locked, "one service per image"
    # Which modules each distribution provides, read from the environment running the tests.
    provided = set(sys.stdlib_module_names) | {"fabkit", service}
    for site in {p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()}:
        for name, modules in distributions(Path(site)).items():
            if name in locked:
                provided |= modules
    # fabkit.testing (the test suites' pytest plugin) and fabkit.localstack (the local launcher)
    # never run in an image, except the topic creation the compose kafka-topics job runs.
    fabkit = ROOT / "shared" / "fabkit"
    imports = imported_modules(fabkit, skip=("testing.py", "localstack/"))
    topic_job = ("__init__.py", "kafka.py", "ports.py", "postgres.py")
    imports.update(imported_modules(fabkit, only=tuple(f"localstack/{f}" for f in topic_job)))
    imports.update(imported_modules(ROOT / "services" / service / service))
    missing = {module: where for module, where in imports.items() if module not in provided}
    assert not missing, f"imported but not installed in the {service} image: {missing}"


# --------------------------------------------------------------------------------------------
# the entry point and the migration gate
# --------------------------------------------------------------------------------------------


def test_entrypoint_runs_one_process_type_per_command(tmp_path: Path) -> None:
    """Each command execs exactly one program (stand-ins record what they were asked)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("python", "uvicorn"):
        stub = bin_dir / program
        stub.write_text(f'#!/bin/sh\necho "{program} $*"\n', encoding="utf-8")
        stub.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FABRIQUE_SERVICE": "leasing",
        "FABRIQUE_TOOLS_DIR": "/tools",
    }

    def run(*args: str) -> str:
        done = subprocess.run(
            ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert run() == run("serve")
    assert run("serve") == (
        "uvicorn --factory leasing.main:create_app --host 0.0.0.0 --port 8000 "
        "--no-access-log --timeout-graceful-shutdown 20"
    )
    assert run("migrate") == "python -m leasing.cli migrate"
    assert (
        run("wait-for-migrations", "--timeout", "9")
        == "python /tools/wait_for_migrations.py leasing --timeout 9"
    )
    assert (
        run("cli", "token", "--client-id", "fabrique-cli")
        == "python -m leasing.cli token --client-id fabrique-cli"
    )
    assert run("echo", "hello") == "hello"
    missing = subprocess.run(
        ["sh", str(ENTRYPOINT), "serve"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode != 0 and "FABRIQUE_SERVICE is not set" in missing.stderr


@pytest.fixture(scope="module")
def wait_for_migrations() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "wait_for_migrations", ENTRYPOINT.parent / "wait_for_migrations.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("service", WITH_DATABASE)
def test_pods_wait_until_the_migration_job_is_done(
    wait_for_migrations: ModuleType,
    service: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The init container's gate on SQLite: refused before `migrate`, open after it."""
    from fabkit.migrations import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", url)
    assert wait_for_migrations.main([service, "--timeout", "0"]) == 1
    assert "waiting for migrations: database at no revision" in capsys.readouterr().out
    upgrade(importlib.import_module(f"{service}.cli").MIGRATIONS, url)
    assert wait_for_migrations.main([service, "--timeout", "0"]) == 0
    assert "database at" in capsys.readouterr().out
    monkeypatch.delenv(f"{service.upper()}_DATABASE_URL")
    assert wait_for_migrations.main([service]) == 2
