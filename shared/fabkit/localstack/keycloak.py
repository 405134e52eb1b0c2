"""A real Keycloak (OpenID Connect provider) on 127.0.0.1, from the Maven Central distribution.

No Docker and no Keycloak package exist on the project's machines, but Maven Central serves the
Quarkus distribution as a zip (``org.keycloak:keycloak-quarkus-dist``). :func:`fetch_keycloak`
copies it once into ``<repo>/.cache/keycloak/<version>/`` and unzips it (exec bits kept);
:func:`prepare_keycloak` also runs the one-time ``kc.sh build`` and records a class-data-sharing
archive of a first start, so that :class:`KeycloakServer` can start with ``--optimized``.

Why not ``kc.sh start-dev``: on two cores start-dev re-runs the Quarkus augmentation (~30 s) at
every start, ~55 s in all. A server built once for the development store (``--db=dev-file``)
and started ``--optimized`` in production mode with HTTP on loopback is ready in about 10 s with
the realms imported (C1 JIT only and the CDS archive take another ~10 s off; see
docs/identity.md for the figures). The options that ``start-dev`` implies are given explicitly
(``--http-enabled``, ``--cache=local``, a fixed ``--hostname`` so that the issuer is stable).

Each server has a home of its own (``<workdir>/home``: conf, data with the H2 files and the
realm files to import, an empty providers dir, and ``lib`` linked to the shared distribution),
so several servers (test sessions of several engineers) share one distribution safely.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from .kafka import (
    MAVEN_DEPENDENCY_PLUGIN,
    LocalStackError,
    find_java,
    repo_root,
    tail_file,
)
from .ports import LOOPBACK, free_ports, port_is_free
from .process import ServerProcess

log = logging.getLogger(__name__)

#: The Keycloak version the project runs (Quarkus distribution, Java 17+).
KEYCLOAK_VERSION = "26.5.6"
KEYCLOAK_ARTIFACT = "org.keycloak:keycloak-quarkus-dist:{version}:zip"
#: Realm files imported at start (``*-realm.json``), committed in the repository.
REALMS_DIR = Path("deploy") / "keycloak"
REALM_GLOB = "*-realm.json"
#: Build-time options of the one-time ``kc.sh build`` (the start must not contradict them).
BUILD_OPTIONS: tuple[str, ...] = ("--db=dev-file", "--health-enabled=true")
#: Development-only administrator of the master realm (bootstrap credentials).
DEV_ADMIN_USER = "admin"
DEV_ADMIN_PASSWORD = "admin"  # noqa: S105 - dev only, loopback only
_FETCHED_MARKER = ".fetched"
_BUILT_MARKER = ".built"
_CDS_ARCHIVE = "keycloak-cds.jsa"

#: JVM options: the distribution's defaults, plus C1 only (on two cores the C2 compiler threads
#: compete with start-up for the CPU: 22 s -> 9 s measured) and a bounded heap.
_JAVA_OPTS = (
    "-XX:MetaspaceSize=96M -XX:MaxMetaspaceSize=256m -Dfile.encoding=UTF-8 "
    "-Dsun.stdout.encoding=UTF-8 -Dsun.err.encoding=UTF-8 -Dstdout.encoding=UTF-8 "
    "-Dstderr.encoding=UTF-8 -XX:+ExitOnOutOfMemoryError -Djava.security.egd=file:/dev/urandom "
    "-XX:+UseG1GC -XX:TieredStopAtLevel=1 -Xshare:auto"
)

Progress = Callable[[str], None]


def _say(progress: Progress | None, message: str) -> None:
    (progress or log.info)(message)


# --------------------------------------------------------------------------------------------
# the distribution
# --------------------------------------------------------------------------------------------


def keycloak_cache_dir(version: str = KEYCLOAK_VERSION, root: Path | None = None) -> Path:
    """``<repo>/.cache/keycloak/<version>`` (``$FABRIQUE_KEYCLOAK_CACHE`` replaces
    ``<repo>/.cache/keycloak``)."""
    if root is None:
        env = os.environ.get("FABRIQUE_KEYCLOAK_CACHE")
        root = Path(env) if env else repo_root() / ".cache" / "keycloak"
    return root / version


def keycloak_home(version: str = KEYCLOAK_VERSION, root: Path | None = None) -> Path:
    """The unzipped distribution: ``<cache>/keycloak-<version>`` (``bin/kc.sh``, ``lib/``)."""
    return keycloak_cache_dir(version, root) / f"keycloak-{version}"


def keycloak_fetched(version: str = KEYCLOAK_VERSION, root: Path | None = None) -> bool:
    cache = keycloak_cache_dir(version, root)
    return (cache / _FETCHED_MARKER).is_file() and (keycloak_home(version, root) / "bin").is_dir()


@contextlib.contextmanager
def _locked(directory: Path) -> Any:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def unzip_keeping_modes(archive: Path, target: Path) -> int:
    """Extract ``archive`` into ``target`` with the Unix permission bits the zip records
    (``zipfile`` drops them: ``kc.sh`` would not be executable). Returns the member count."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            name = info.filename
            if name.startswith("/") or ".." in Path(name).parts:
                raise LocalStackError(f"refusing unsafe path {name!r} in {archive}")
            path = Path(zf.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                path.chmod(mode)
            elif not info.is_dir() and name.endswith(".sh"):
                path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return len(members)


def fetch_keycloak(
    version: str = KEYCLOAK_VERSION,
    *,
    cache_root: Path | None = None,
    mvn: str | None = None,
    force: bool = False,
    timeout: float = 900.0,
    progress: Progress | None = None,
) -> Path:
    """Copy the Keycloak distribution zip from Maven Central and unzip it; return its home.

    Runs ``mvn dependency:copy`` of ``org.keycloak:keycloak-quarkus-dist:<version>:zip`` once
    (about 164 MB); later calls return at once. Safe against concurrent callers (file lock;
    unzipped into a temporary directory, then renamed into place).
    """
    cache = keycloak_cache_dir(version, cache_root)
    home = keycloak_home(version, cache_root)
    if not force and keycloak_fetched(version, cache_root):
        return home
    with _locked(cache):
        if not force and keycloak_fetched(version, cache_root):
            return home
        mvn_exe = mvn or shutil.which("mvn")
        if not mvn_exe:
            raise LocalStackError(
                "Maven (mvn) is not installed; it is needed once to fetch Keycloak "
                "(Debian: apt-get install -y maven)"
            )
        download = cache / f"download.tmp-{os.getpid()}"
        unpacked = cache / f"unpacked.tmp-{os.getpid()}"
        for tmp in (download, unpacked):
            shutil.rmtree(tmp, ignore_errors=True)
        cmd = [
            mvn_exe,
            "-B",
            "-q",
            "-Dstyle.color=never",
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={KEYCLOAK_ARTIFACT.format(version=version)}",
            f"-DoutputDirectory={download}",
        ]
        _say(progress, f"fetching Keycloak {version} from Maven Central (about 164 MB)...")
        started = time.monotonic()
        try:
            proc = subprocess.run(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                cwd=cache,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(download, ignore_errors=True)
            raise LocalStackError(f"fetching Keycloak timed out after {timeout:.0f}s") from exc
        zips = sorted(download.glob("keycloak-quarkus-dist-*.zip"))
        if proc.returncode != 0 or not zips:
            shutil.rmtree(download, ignore_errors=True)
            output = (proc.stdout + proc.stderr).strip()[-4000:]
            raise LocalStackError(f"mvn dependency:copy failed (exit {proc.returncode}):\n{output}")
        fetched_in = time.monotonic() - started
        _say(progress, f"fetched {zips[0].name} in {fetched_in:.1f}s; unzipping...")
        count = unzip_keeping_modes(zips[0], unpacked)
        inner = unpacked / f"keycloak-{version}"
        if not (inner / "bin" / "kc.sh").is_file():
            shutil.rmtree(unpacked, ignore_errors=True)
            shutil.rmtree(download, ignore_errors=True)
            raise LocalStackError(f"{zips[0].name} does not hold keycloak-{version}/bin/kc.sh")
        shutil.rmtree(home, ignore_errors=True)
        for stale in (_BUILT_MARKER, _CDS_ARCHIVE):
            (cache / stale).unlink(missing_ok=True)
        inner.rename(home)
        shutil.rmtree(unpacked, ignore_errors=True)
        shutil.rmtree(download, ignore_errors=True)
        (cache / _FETCHED_MARKER).write_text(
            json.dumps(
                {
                    "version": version,
                    "artifact": KEYCLOAK_ARTIFACT.format(version=version),
                    "files": count,
                    "seconds": round(time.monotonic() - started, 1),
                },
                indent=1,
            )
            + "\n"
        )
        _say(progress, f"Keycloak {version} in {home} ({time.monotonic() - started:.1f}s)")
        return home


def _build_fingerprint(version: str) -> str:
    return json.dumps({"version": version, "options": list(BUILD_OPTIONS)})


def build_keycloak(
    version: str = KEYCLOAK_VERSION,
    *,
    cache_root: Path | None = None,
    java: str | None = None,
    timeout: float = 600.0,
    progress: Progress | None = None,
) -> Path:
    """Run ``kc.sh build`` with :data:`BUILD_OPTIONS` once (the ~30 s Quarkus augmentation
    that ``start-dev`` would repeat at every start). Returns the distribution's home."""
    home = fetch_keycloak(version, cache_root=cache_root, progress=progress)
    cache = keycloak_cache_dir(version, cache_root)
    marker = cache / _BUILT_MARKER
    fingerprint = _build_fingerprint(version)
    if marker.is_file() and marker.read_text() == fingerprint:
        return home
    with _locked(cache):
        if marker.is_file() and marker.read_text() == fingerprint:
            return home
        (cache / _CDS_ARCHIVE).unlink(missing_ok=True)
        cmd = [str(home / "bin" / "kc.sh"), "build", *BUILD_OPTIONS]
        _say(progress, f"building Keycloak once ({' '.join(BUILD_OPTIONS)}), about 30-60 s...")
        started = time.monotonic()
        out_path = cache / "build.log"
        with open(out_path, "wb") as out:
            try:
                rc = subprocess.run(  # noqa: S603
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=_java_env(java),
                    timeout=timeout,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired as exc:
                raise LocalStackError(f"kc.sh build timed out after {timeout:.0f}s") from exc
        if rc != 0:
            raise LocalStackError(f"kc.sh build failed (exit {rc}):\n{tail_file(out_path)}")
        marker.write_text(fingerprint)
        _say(progress, f"Keycloak built in {time.monotonic() - started:.1f}s")
        return home


def _java_env(java: str | None, extra_opts: str = "") -> dict[str, str]:
    env = dict(os.environ)
    java_exe = find_java(java)
    env["JAVA"] = java_exe
    env["JAVA_OPTS"] = f"{_JAVA_OPTS} {extra_opts}".strip()
    for inherited in ("JAVA_OPTS_APPEND", "JAVA_OPTS_KC_HEAP", "KC_DB", "KC_DB_URL"):
        env.pop(inherited, None)
    return env


def cds_archive(version: str = KEYCLOAK_VERSION, root: Path | None = None) -> Path:
    """The class-data-sharing archive recorded from a first start (absent until then)."""
    return keycloak_cache_dir(version, root) / _CDS_ARCHIVE


def prepare_keycloak(
    version: str = KEYCLOAK_VERSION,
    *,
    cache_root: Path | None = None,
    java: str | None = None,
    progress: Progress | None = None,
    record_cds: bool = True,
) -> Path:
    """Fetch, build and (once) record the CDS archive of a start: everything a fast start
    needs. ``fabrique-stack fetch`` runs it at bootstrap. Returns the distribution's home."""
    home = build_keycloak(version, cache_root=cache_root, java=java, progress=progress)
    archive = cds_archive(version, cache_root)
    if not record_cds or archive.is_file():
        return home
    cache = keycloak_cache_dir(version, cache_root)
    with _locked(cache):
        if archive.is_file():
            return home
        _say(progress, "recording Keycloak's class-data-sharing archive (one start, ~30 s)...")
        started = time.monotonic()
        workdir = cache / f"cds-run-{os.getpid()}"
        shutil.rmtree(workdir, ignore_errors=True)
        pending = cache / f"{_CDS_ARCHIVE}.tmp-{os.getpid()}"
        server = KeycloakServer(
            workdir,
            version=version,
            cache_root=cache_root,
            java=java,
            realms=(),
            jvm_options=f"-XX:ArchiveClassesAtExit={pending}",
            use_cds=False,
        )
        try:
            server.start(timeout=300)
            # Touch the code paths tests and services use, so their classes are archived too.
            with httpx.Client(timeout=30) as client:
                client.get(f"{server.base_url}/realms/master/.well-known/openid-configuration")
                client.get(f"{server.base_url}/realms/master/protocol/openid-connect/certs")
                server.admin_token(client)
        finally:
            server.stop(timeout=120)
            shutil.rmtree(workdir, ignore_errors=True)
        if pending.is_file() and pending.stat().st_size > 0:
            pending.rename(archive)
            _say(progress, f"CDS archive recorded in {time.monotonic() - started:.1f}s")
        else:
            log.warning("the JVM wrote no CDS archive; Keycloak starts without one")
            pending.unlink(missing_ok=True)
        return home


def realm_files(directory: Path | None = None) -> list[Path]:
    """The realm files to import: ``deploy/keycloak/*-realm.json``."""
    folder = directory if directory is not None else repo_root() / REALMS_DIR
    return sorted(folder.glob(REALM_GLOB))


def realm_names(files: Iterable[Path]) -> list[str]:
    return [str(json.loads(f.read_text(encoding="utf-8"))["realm"]) for f in files]


def file_digest(files: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::[^}]*)?\}")
#: Placeholders patched after start rather than baked into a realm template (they name ports).
_PATCHED_PLACEHOLDERS = frozenset({"FABRIQUE_PROCONNECT_ISSUER"})


def realm_placeholders(files: Iterable[Path]) -> list[str]:
    """The environment variables the realm files' ``${VAR:default}`` placeholders name."""
    names: set[str] = set()
    for f in files:
        names.update(_PLACEHOLDER.findall(f.read_text(encoding="utf-8")))
    return sorted(names)


def ensure_realm_template(
    files: Sequence[Path],
    env: Mapping[str, str],
    *,
    version: str = KEYCLOAK_VERSION,
    cache_root: Path | None = None,
    java: str | None = None,
    progress: Progress | None = None,
    timeout: float = 600.0,
) -> Path:
    """A store (H2 files) with the master realm set up and ``files`` imported, made once.

    A fresh store costs most of a cold start on two cores (schema, master realm, realm import
    with password hashing: ~45 s of ~60 s under load); copying a template costs milliseconds.
    Keyed by the realm files, the placeholder values they use (SMTP host/port...) and the
    build, so a changed realm file makes a new template. Returns the template's ``h2`` dir.
    """
    values = {name: env.get(name) for name in realm_placeholders(files)}
    for name in _PATCHED_PLACEHOLDERS:
        values.pop(name, None)
    key = hashlib.sha256(
        json.dumps(
            {
                "realms": file_digest(files),
                "env": values,
                "build": _build_fingerprint(version),
                "admin": DEV_ADMIN_USER,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    cache = keycloak_cache_dir(version, cache_root)
    target = cache / "templates" / key / "h2"
    if (target / "keycloakdb.mv.db").is_file():
        return target
    with _locked(cache / "templates"):
        if (target / "keycloakdb.mv.db").is_file():
            return target
        _say(progress, "preparing Keycloak's store with the realms imported (once per change)")
        workdir = cache / "templates" / f"run-{os.getpid()}"
        shutil.rmtree(workdir, ignore_errors=True)
        server = KeycloakServer(
            workdir,
            version=version,
            cache_root=cache_root,
            java=java,
            realms=files,
            env={k: v for k, v in env.items() if k in values and v is not None},
            use_template=False,
        )
        try:
            server.start(timeout=timeout)
        finally:
            server.stop(timeout=60)
        produced = server.home / "data" / "h2"
        if not (produced / "keycloakdb.mv.db").is_file():
            raise LocalStackError(f"Keycloak left no H2 store in {produced}")
        staging = target.parent / f"h2.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for db in produced.glob("*.mv.db"):
            shutil.copyfile(db, staging / db.name)
        staging.rename(target)
        shutil.rmtree(workdir, ignore_errors=True)
        return target


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------


class KeycloakServer(ServerProcess):
    """One local Keycloak listening on 127.0.0.1 only, with the committed realms imported.

    ``workdir`` holds the server's own home (``home/``: conf, data with the H2 store and the
    realm files to import) and its output (``keycloak.log``). Ports are chosen once (free ports
    unless given) and the issuer is pinned to ``http://127.0.0.1:<port>``, so :meth:`restart`
    brings the same provider back with the same data and keys. Environment variables for the
    realm files' ``${VAR:default}`` placeholders go in ``env`` (e.g. ``FABRIQUE_SMTP_PORT``);
    ``FABRIQUE_PROCONNECT_ISSUER`` defaults to this server's own ``proconnect-sim`` realm.
    """

    label = "Keycloak"
    default_start_timeout = 180.0

    def __init__(
        self,
        workdir: Path | str,
        port: int | None = None,
        management_port: int | None = None,
        *,
        version: str = KEYCLOAK_VERSION,
        cache_root: Path | None = None,
        java: str | None = None,
        realms: Sequence[Path] | None = None,
        admin_user: str = DEV_ADMIN_USER,
        admin_password: str = DEV_ADMIN_PASSWORD,
        heap: str = "512m",
        env: Mapping[str, str] | None = None,
        jvm_options: str = "",
        use_cds: bool = True,
        use_template: bool = True,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        if port is None or management_port is None:
            given = {p for p in (port, management_port) if p is not None}
            pool = [p for p in free_ports(3) if p not in given]
            port = port if port is not None else pool.pop(0)
            management_port = management_port if management_port is not None else pool.pop(0)
        if port == management_port:
            raise ValueError("port and management_port must differ")
        self.port: int = port
        self.management_port: int = management_port
        self.version = version
        self.cache_root = cache_root
        self.java = java
        self.realm_paths = list(realm_files() if realms is None else realms)
        self.realms = realm_names(self.realm_paths)
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.heap = heap
        self.env = dict(env or {})
        self.jvm_options = jvm_options
        self.use_cds = use_cds
        # A template holds the default bootstrap administrator only.
        self.use_template = use_template and (admin_user, admin_password) == (
            DEV_ADMIN_USER,
            DEV_ADMIN_PASSWORD,
        )
        self.started_in: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None

    # addresses ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def address(self) -> str:
        return self.base_url

    def issuer(self, realm: str = "fabrique") -> str:
        return f"{self.base_url}/realms/{realm}"

    def token_endpoint(self, realm: str = "fabrique") -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/token"

    def jwks_url(self, realm: str = "fabrique") -> str:
        return f"{self.issuer(realm)}/protocol/openid-connect/certs"

    @property
    def home(self) -> Path:
        return self.workdir / "home"

    @property
    def log_path(self) -> Path:
        return self.workdir / "keycloak.log"

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<KeycloakServer {self.base_url} {state} {self.workdir}>"

    # layout ---------------------------------------------------------------------------------
    def _lay_out_home(self, dist: Path) -> None:
        home = self.home
        (home / "data" / "import").mkdir(parents=True, exist_ok=True)
        (home / "providers").mkdir(exist_ok=True)
        (home / "themes").mkdir(exist_ok=True)
        conf = home / "conf"
        if not conf.is_dir():
            shutil.copytree(dist / "conf", conf)
        lib = home / "lib"
        if lib.is_symlink() and lib.resolve() != (dist / "lib").resolve():
            lib.unlink()
        if not lib.exists():
            # `--optimized` looks for the build in <kc.home.dir>/lib; share the cached one.
            lib.symlink_to(dist / "lib", target_is_directory=True)
        imports = home / "data" / "import"
        for stale in imports.glob("*.json"):
            stale.unlink()
        for realm in self.realm_paths:
            shutil.copyfile(realm, imports / realm.name)

    def command(self, dist: Path) -> list[str]:
        cmd = [
            str(dist / "bin" / "kc.sh"),
            f"-Dkc.home.dir={self.home}",
            f"-Djboss.server.config.dir={self.home / 'conf'}",
            "start",
            "--optimized",
            "--http-enabled=true",
            f"--http-host={LOOPBACK}",
            f"--http-port={self.port}",
            f"--http-management-port={self.management_port}",
            f"--hostname={self.base_url}",
            "--cache=local",
            "--log-console-output=default",
        ]
        if self.realm_paths:
            cmd.append("--import-realm")
        return cmd

    def _environment(self) -> dict[str, str]:
        extra = f"-Xms64m -Xmx{self.heap} {self.jvm_options}"
        archive = cds_archive(self.version, self.cache_root)
        if self.use_cds and archive.is_file():
            extra += f" -XX:SharedArchiveFile={archive}"
        env = _java_env(self.java, extra)
        env["KC_BOOTSTRAP_ADMIN_USERNAME"] = self.admin_user
        env["KC_BOOTSTRAP_ADMIN_PASSWORD"] = self.admin_password
        env.setdefault("FABRIQUE_PROCONNECT_ISSUER", self.issuer("proconnect-sim"))
        env.update(self.env)
        return env

    # lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 180.0, progress: Progress | None = None) -> KeycloakServer:
        """Prepare the distribution if needed, start Keycloak and wait until every realm's
        discovery document answers."""
        if self.is_running:
            return self
        dist = build_keycloak(self.version, cache_root=self.cache_root, progress=progress)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._lay_out_home(dist)
        store = self.home / "data" / "h2"
        if self.use_template and self.realm_paths and not store.exists():
            template = ensure_realm_template(
                self.realm_paths,
                self._environment(),
                version=self.version,
                cache_root=self.cache_root,
                java=self.java,
                progress=progress,
            )
            shutil.copytree(template, store)
        for port in (self.port, self.management_port):
            if not port_is_free(port):
                raise LocalStackError(f"port {LOOPBACK}:{port} is already in use")
        cmd = self.command(dist)
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - kept open while running
        self._log_fh.write(f"\n=== start: {' '.join(cmd)}\n".encode())
        self._log_fh.flush()
        _say(progress, f"starting Keycloak {self.version} on {self.base_url} ({self.workdir})")
        started = time.monotonic()
        self._proc = subprocess.Popen(  # noqa: S603
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            process_group=0,
            cwd=self.workdir,
            env=self._environment(),
        )
        atexit.unregister(self._atexit)
        atexit.register(self._atexit)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        try:
            self._point_broker_at_proconnect()
        except BaseException:
            self.kill()
            raise
        self.started_in = time.monotonic() - started
        _say(progress, f"Keycloak ready on {self.base_url} in {self.started_in:.1f}s")
        return self

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Block until the discovery document of every imported realm (else ``master``)
        answers with this server's issuer."""
        deadline = time.monotonic() + timeout
        pending = list(self.realms or ["master"])
        last_error: str = "no answer yet"
        with httpx.Client(timeout=5.0) as client:
            while pending:
                if self._proc is None:
                    raise LocalStackError("Keycloak was not started")
                rc = self._proc.poll()
                if rc is not None:
                    raise LocalStackError(
                        f"Keycloak exited with code {rc} while starting; end of "
                        f"{self.log_path}:\n{tail_file(self.log_path, 60)}"
                    )
                realm = pending[0]
                try:
                    answer = client.get(f"{self.issuer(realm)}/.well-known/openid-configuration")
                    if answer.status_code == 200 and answer.json().get("issuer") == self.issuer(
                        realm
                    ):
                        pending.pop(0)
                        continue
                    last_error = f"HTTP {answer.status_code} for realm {realm}"
                except (httpx.HTTPError, ValueError) as exc:
                    last_error = repr(exc)
                if time.monotonic() > deadline:
                    raise LocalStackError(
                        f"Keycloak not ready on {self.base_url} after {timeout:.0f}s "
                        f"(last: {last_error}); end of {self.log_path}:\n"
                        f"{tail_file(self.log_path, 60)}"
                    )
                time.sleep(0.2)

    # administration -------------------------------------------------------------------------
    def _point_broker_at_proconnect(self) -> None:
        """Make realm fabrique's ``proconnect`` provider use ``FABRIQUE_PROCONNECT_ISSUER``
        (by default this server's ``proconnect-sim`` realm, whose port the template cannot
        know). A no-op when it already does or when the realm has no such provider."""
        if "fabrique" not in self.realms:
            return
        wanted = self._environment()["FABRIQUE_PROCONNECT_ISSUER"].rstrip("/")
        with httpx.Client(timeout=30) as client:
            headers = {"Authorization": f"Bearer {self.admin_token(client)}"}
            url = f"{self.base_url}/admin/realms/fabrique/identity-provider/instances/proconnect"
            answer = client.get(url, headers=headers)
            if answer.status_code == 404:
                return
            answer.raise_for_status()
            provider = answer.json()
            config = provider.get("config", {})
            current = str(config.get("issuer", "")).rstrip("/")
            if not current or current == wanted:
                return
            provider["config"] = {
                k: v.replace(current, wanted) if isinstance(v, str) else v
                for k, v in config.items()
            }
            client.put(url, headers=headers, json=provider).raise_for_status()
            log.info("identity provider proconnect now points at %s", wanted)

    def admin_token(self, client: httpx.Client | None = None) -> str:
        """An access token of the master realm's bootstrap administrator (admin-cli)."""
        own = client is None
        http = client or httpx.Client(timeout=30)
        try:
            answer = http.post(
                self.token_endpoint("master"),
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self.admin_user,
                    "password": self.admin_password,
                },
            )
            if answer.status_code != 200:
                raise LocalStackError(
                    f"Keycloak refused the bootstrap admin's login: HTTP {answer.status_code}"
                )
            return str(answer.json()["access_token"])
        finally:
            if own:
                http.close()


def start_keycloak(
    workdir: Path | str,
    port: int | None = None,
    *,
    timeout: float = 180.0,
    env: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> KeycloakServer:
    """Start a Keycloak with the committed realms; the caller stops it."""
    server = KeycloakServer(workdir, port=port, env=env)
    return server.start(timeout, progress=progress)
