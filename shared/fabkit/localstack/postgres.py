"""A throw-away PostgreSQL server on 127.0.0.1 from the machine's PostgreSQL binaries.

``initdb`` a data directory (trust auth, TCP on 127.0.0.1 only, unix socket inside the data
directory), run ``postgres`` as a child process in its own process group, create databases.
PostgreSQL refuses to run as root: when we are root, initdb and postgres run as the ``postgres``
system user (the data directory is chown'ed to it).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .kafka import LocalStackError, tail_file, tcp_accepts
from .ports import LOOPBACK, free_port, port_is_free
from .process import terminate

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
_SYSTEM_USER = "postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; PostgreSQL appends "/.s.PGSQL.<port>"


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin
    try:
        return tuple(int(x) for x in path.parent.name.split("."))
    except ValueError:
        return (0,)


def find_pg_bindir() -> Path:
    """Directory holding ``initdb``/``postgres``: ``$FABRIQUE_PG_BINDIR``, ``pg_config
    --bindir``, else the newest ``/usr/lib/postgresql/*/bin``."""

    def usable(d: Path) -> bool:
        return (d / "initdb").is_file() and (d / "postgres").is_file()

    env = os.environ.get("FABRIQUE_PG_BINDIR")
    if env:
        if usable(Path(env)):
            return Path(env)
        raise LocalStackError(f"FABRIQUE_PG_BINDIR={env} holds no initdb/postgres")
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(  # noqa: S603
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and usable(Path(out)):
                return Path(out)
    candidates = sorted(
        (d for d in Path("/usr/lib/postgresql").glob("*/bin") if usable(d)),
        key=_version_key,
        reverse=True,
    )
    if candidates:
        return candidates[0]
    initdb = shutil.which("initdb")
    if initdb and usable(Path(initdb).parent):
        return Path(initdb).parent
    raise LocalStackError(
        "PostgreSQL server binaries not found (Debian: apt-get install -y postgresql)"
    )


def _must_switch_user() -> bool:
    return os.geteuid() == 0


class PostgresServer:
    """A local PostgreSQL server for tests and the dev stack.

    ``workdir`` holds ``postgres.log`` and the data directory ``pgdata/``. When we are root and
    the ``postgres`` system user cannot reach ``workdir`` (e.g. pytest's 0700 temporary
    directories under /tmp/pytest-of-root), the data directory is made in a private temporary
    directory instead and removed again by :meth:`stop`.
    """

    def __init__(
        self,
        workdir: Path | str,
        port: int | None = None,
        *,
        bindir: Path | None = None,
        max_connections: int = 200,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.port: int = port if port is not None else free_port()
        self.bindir = bindir
        self.max_connections = max_connections
        self.settings = dict(settings or {})
        self._data_dir: Path | None = None
        self._scratch: Path | None = None  # fallback data location to remove on stop
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None

    # paths / state --------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            self._data_dir = self._choose_data_dir()
        return self._data_dir

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def host(self) -> str:
        return LOOPBACK

    def url(self, dbname: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+asyncpg://postgres@127.0.0.1:<port>/<dbname>``."""
        return f"{driver}://{SUPERUSER}@{LOOPBACK}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq / asyncpg DSN: ``postgresql://postgres@127.0.0.1:<port>/<dbname>``."""
        return self.url(dbname, driver="postgresql")

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<PostgresServer {LOOPBACK}:{self.port} {state} {self.workdir}>"

    # helpers --------------------------------------------------------------------------------
    def _bin(self, name: str) -> str:
        if self.bindir is None:
            self.bindir = find_pg_bindir()
        return str(self.bindir / name)

    def _user_kwargs(self) -> dict[str, Any]:
        if not _must_switch_user():
            return {}
        try:
            pw = pwd.getpwnam(_SYSTEM_USER)
        except KeyError as exc:
            raise LocalStackError(
                "running as root but there is no 'postgres' system user to run PostgreSQL as "
                "(it comes with Debian's postgresql package)"
            ) from exc
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": pw.pw_dir,
            "USER": _SYSTEM_USER,
            "LOGNAME": _SYSTEM_USER,
            "LANG": "C.UTF-8",
        }
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "env": env}

    def _postgres_user_can_use(self, directory: Path) -> bool:
        """Can the postgres system user create entries in ``directory``?"""
        try:
            kwargs = self._user_kwargs()
            return (
                subprocess.run(  # noqa: S603
                    ["test", "-w", str(directory), "-a", "-x", str(directory)],  # noqa: S607
                    check=False,
                    stdin=subprocess.DEVNULL,
                    **kwargs,
                ).returncode
                == 0
            )
        except OSError:
            return False

    def _choose_data_dir(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        preferred = self.workdir / "pgdata"
        if not _must_switch_user():
            return preferred
        pw = pwd.getpwnam(_SYSTEM_USER)
        if preferred.exists():
            return preferred
        # Give the postgres user the workdir itself (it is ours), then check it can get there
        # through every ancestor.
        os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        if self._postgres_user_can_use(self.workdir):
            return preferred
        scratch = Path(tempfile.mkdtemp(prefix="fabrique-pg-"))
        os.chown(scratch, pw.pw_uid, pw.pw_gid)
        self._scratch = scratch
        log.info("postgres user cannot reach %s; using data directory %s", self.workdir, scratch)
        return scratch / "pgdata"

    def _socket_dir(self) -> str:
        # Unix socket inside the data directory when the path is short enough, else none
        # (everything here talks TCP to 127.0.0.1 anyway).
        if len(str(self.data_dir)) + len("/.s.PGSQL.65535") <= _SOCKET_PATH_MAX:
            return str(self.data_dir)
        return ""

    @property
    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init_db(self) -> None:
        """``initdb`` the data directory (trust auth) unless already done."""
        if self.is_initialized:
            return
        data = self.data_dir
        data.parent.mkdir(parents=True, exist_ok=True)
        if _must_switch_user():
            pw = pwd.getpwnam(_SYSTEM_USER)
            data.mkdir(mode=0o700, exist_ok=True)
            os.chown(data, pw.pw_uid, pw.pw_gid)
        cmd = [
            self._bin("initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ]
        with open(self.log_path, "ab") as out:
            out.write(f"\n=== initdb: {' '.join(cmd)}\n".encode())
            out.flush()
            rc = subprocess.run(  # noqa: S603
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                **self._user_kwargs(),
            ).returncode
        if rc != 0:
            raise LocalStackError(f"initdb failed (exit {rc}):\n{tail_file(self.log_path)}")
        conf = {
            "listen_addresses": f"'{LOOPBACK}'",
            "max_connections": str(self.max_connections),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            "timezone": "'UTC'",
            **self.settings,
        }
        lines = ["", "# fabkit.localstack.postgres (local tests / dev stack only)"]
        lines += [f"{k} = {v}" for k, v in conf.items()]
        with open(data / "postgresql.conf", "a") as fh:
            fh.write("\n".join(lines) + "\n")
        hba = (
            "# fabkit.localstack.postgres: trust, 127.0.0.1 and the private unix socket only\n"
            "local all all trust\n"
            f"host all all {LOOPBACK}/32 trust\n"
        )
        (data / "pg_hba.conf").write_text(hba)

    # lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> PostgresServer:
        if self.is_running:
            return self
        self.init_db()
        if not port_is_free(self.port):
            raise LocalStackError(f"port {LOOPBACK}:{self.port} is already in use")
        cmd = [
            self._bin("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            LOOPBACK,
            "-k",
            self._socket_dir(),
        ]
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - kept open while running
        self._log_fh.write(f"\n=== start: {' '.join(cmd)}\n".encode())
        self._log_fh.flush()
        log.info("starting PostgreSQL on %s:%s (%s)", LOOPBACK, self.port, self.data_dir)
        self._proc = subprocess.Popen(  # noqa: S603
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            process_group=0,
            **self._user_kwargs(),
        )
        atexit.unregister(self._atexit)
        atexit.register(self._atexit)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop(timeout=5)
            raise
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        isready = self._bin("pg_isready")
        while True:
            if self._proc is None:
                raise LocalStackError("PostgreSQL was not started")
            rc = self._proc.poll()
            if rc is not None:
                raise LocalStackError(
                    f"PostgreSQL exited with code {rc} while starting; end of "
                    f"{self.log_path}:\n{tail_file(self.log_path)}"
                )
            if tcp_accepts(LOOPBACK, self.port):
                probe = subprocess.run(  # noqa: S603
                    [isready, "-q", "-h", LOOPBACK, "-p", str(self.port), "-U", SUPERUSER],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    check=False,
                    timeout=10,
                )
                if probe.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise LocalStackError(
                    f"PostgreSQL not ready on {LOOPBACK}:{self.port} after {timeout:.0f}s; "
                    f"end of {self.log_path}:\n{tail_file(self.log_path)}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Fast shutdown (SIGINT), SIGKILL after ``timeout`` s; removes a scratch data dir."""
        proc = self._proc
        rc: int | None = None
        try:
            if proc is not None:
                rc = terminate(proc, signal.SIGINT, timeout)
                log.info("PostgreSQL on %s:%s stopped (exit %s)", LOOPBACK, self.port, rc)
        finally:
            if self._log_fh is not None:
                with contextlib.suppress(OSError):
                    self._log_fh.close()
                self._log_fh = None
            with contextlib.suppress(Exception):
                atexit.unregister(self._atexit)
            if self._scratch is not None and not self.is_running:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None
                self._data_dir = None
        return rc

    def kill(self) -> None:
        """SIGKILL the postmaster's process group (crash; for fault tests). Data stays."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait(timeout=30)

    def restart(self, timeout: float = 60.0) -> PostgresServer:
        """Start again on the same port and data (after :meth:`kill` or a stop)."""
        if self.is_running:
            proc = self._proc
            assert proc is not None
            terminate(proc, signal.SIGINT, 30)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        return self.start(timeout)

    def _atexit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=10)

    # SQL ------------------------------------------------------------------------------------
    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with ``psql`` (as the ``postgres`` role over TCP); returns unaligned rows."""
        proc = subprocess.run(  # noqa: S603
            [
                self._bin("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                dbname,
                "-tA",
                "-c",
                sql,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        if proc.returncode != 0:
            raise LocalStackError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def create_database(self, name: str) -> bool:
        """Create database ``name`` unless it exists; returns True when it was created."""
        return create_database_via(self.psql, name)

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_IDENT_OK = re.compile(r"^[A-Za-z0-9_\-.]{1,63}$")


def quote_ident(name: str) -> str:
    """Quote a database name (limited to ``[A-Za-z0-9_.-]``, at most 63 characters)."""
    if not _IDENT_OK.match(name):
        raise ValueError(f"unsupported database name: {name!r}")
    return '"' + name + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_database_via(run_sql: Any, name: str) -> bool:
    """Idempotent CREATE DATABASE through a ``run_sql(sql) -> str`` callable."""
    ident = quote_ident(name)
    query = f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)}"  # noqa: S608
    exists = run_sql(query).strip()
    if exists:
        return False
    try:
        run_sql(f"CREATE DATABASE {ident}")
    except LocalStackError as exc:  # created concurrently
        if "already exists" in str(exc):
            return False
        raise
    return True


def start_postgres(
    workdir: Path | str,
    port: int | None = None,
    *,
    databases: list[str] | tuple[str, ...] = (),
    timeout: float = 60.0,
) -> PostgresServer:
    """Start a PostgreSQL server and create ``databases``; the caller stops it."""
    server = PostgresServer(workdir, port=port)
    server.start(timeout)
    try:
        for name in databases:
            server.create_database(name)
    except BaseException:
        server.stop()
        raise
    return server
