"""``fabrique-stack``: the project's local-stack launcher (real Kafka broker, real PostgreSQL).

    fabrique-stack fetch                       # download the Kafka jars only (CI install step)
    fabrique-stack broker [--port 9092] [--data-dir .run/kafka]
    fabrique-stack postgres [--port 5432] [--data-dir .run/postgres] [--database NAME ...]

``broker`` and ``postgres`` run in the foreground, print where they listen and stop cleanly on
Ctrl-C / SIGTERM. Each ``cmd_*`` function is built from ``start_*`` helpers that return started
objects, so a ``run`` subcommand that starts the whole platform can reuse them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from .kafka import (
    KAFKA_VERSION,
    KafkaBroker,
    LocalStackError,
    fetch_kafka_jars,
    load_topic_specs,
    repo_root,
    start_broker,
)
from .keycloak import KEYCLOAK_VERSION
from .postgres import PostgresServer, start_postgres

log = logging.getLogger("fabrique-stack")


def default_run_dir() -> Path:
    """``<repo>/.run`` (git-ignored): default parent of the services' data directories."""
    return repo_root() / ".run"


# --------------------------------------------------------------------------------------------
# foreground helpers
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def shutdown_signals() -> Iterator[threading.Event]:
    """Turn SIGINT/SIGTERM/SIGHUP into an Event (restoring the old handlers afterwards)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {
        sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve_until_signal(
    stop: threading.Event,
    services: Sequence[KafkaBroker | PostgresServer],
    poll: float = 0.5,
) -> int:
    """Block until ``stop`` is set or a service dies; returns an exit code (0 on signal)."""
    while not stop.wait(poll):
        for service in services:
            if not service.is_running:
                log.error("%r exited unexpectedly; see %s", service, service.log_path)
                return 1
    return 0


def stop_all(services: Sequence[KafkaBroker | PostgresServer]) -> None:
    """Stop services in reverse start order, logging (not raising) failures."""
    for service in reversed(services):
        try:
            service.stop()
        except Exception:
            log.exception("stopping %r failed", service)


def _run_foreground(
    starters: Sequence[Callable[[], KafkaBroker | PostgresServer]],
    announce: Callable[[KafkaBroker | PostgresServer], None],
) -> int:
    started: list[KafkaBroker | PostgresServer] = []
    with shutdown_signals() as stop:
        try:
            for starter in starters:
                if stop.is_set():
                    break
                service = starter()
                started.append(service)
                announce(service)
            if stop.is_set():
                return 0
            return serve_until_signal(stop, started)
        except LocalStackError as exc:
            log.error("%s", exc)
            return 1
        finally:
            stop_all(started)


def _print(line: str) -> None:
    print(line, flush=True)


# --------------------------------------------------------------------------------------------
# subcommands
# --------------------------------------------------------------------------------------------


def cmd_fetch(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        libs = fetch_kafka_jars(args.kafka_version, force=args.force)
    except LocalStackError as exc:
        log.error("%s", exc)
        return 1
    _print(f"Kafka {args.kafka_version} jars in {libs} ({time.monotonic() - started:.1f}s)")
    if args.no_keycloak:
        return 0
    from .keycloak import ensure_realm_template, prepare_keycloak, realm_files

    started = time.monotonic()
    try:
        # Distribution, one-time build, CDS archive and the realms' store: what a start needs.
        home = prepare_keycloak(args.keycloak_version, progress=_print)
        ensure_realm_template(realm_files(), os.environ, version=args.keycloak_version)
    except LocalStackError as exc:
        log.error("%s", exc)
        return 1
    _print(f"Keycloak {args.keycloak_version} in {home} ({time.monotonic() - started:.1f}s)")
    return 0


def broker_starter(args: argparse.Namespace) -> Callable[[], KafkaBroker]:
    data_dir = Path(args.data_dir) if args.data_dir else default_run_dir() / "kafka"

    def start() -> KafkaBroker:
        specs = load_topic_specs(args.topics) if not args.no_topics else []
        return start_broker(
            data_dir,
            port=args.port,
            topics=specs,
            create_topics=not args.no_topics,
            heap=args.heap,
            timeout=args.timeout,
        )

    return start


def postgres_starter(args: argparse.Namespace) -> Callable[[], PostgresServer]:
    data_dir = Path(args.data_dir) if args.data_dir else default_run_dir() / "postgres"

    def start() -> PostgresServer:
        return start_postgres(
            data_dir, port=args.port, databases=args.database or [], timeout=args.timeout
        )

    return start


def announce(service: KafkaBroker | PostgresServer) -> None:
    if isinstance(service, KafkaBroker):
        _print(f"KAFKA_BOOTSTRAP={service.bootstrap}")
        log.info("Kafka broker ready on %s (log: %s)", service.bootstrap, service.log_path)
    else:
        _print(f"POSTGRES_URL_BASE=postgresql+asyncpg://postgres@127.0.0.1:{service.port}")
        log.info("PostgreSQL ready on 127.0.0.1:%s (log: %s)", service.port, service.log_path)


def cmd_broker(args: argparse.Namespace) -> int:
    return _run_foreground([broker_starter(args)], announce)


def cmd_postgres(args: argparse.Namespace) -> int:
    return _run_foreground([postgres_starter(args)], announce)


def cmd_run(args: argparse.Namespace) -> int:
    """Broker, Keycloak, databases and every service as processes, with demo data; Ctrl-C
    stops all."""
    from .platform import demo_client_token, demo_hints, describe, start_platform, write_state

    run_dir = Path(args.data_dir) if args.data_dir else default_run_dir()
    if args.fresh and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    with shutdown_signals() as stop:
        try:
            platform = start_platform(
                run_dir,
                database=args.database,
                kafka_port=args.kafka_port,
                brokers=args.brokers,
                seed=not args.no_seed,
                keycloak=not args.no_keycloak,
            )
        except (LocalStackError, RuntimeError) as exc:
            log.error("%s", exc)
            return 1
        try:
            write_state(run_dir, platform)
            # Tokens come from the identity provider (the demo realm's admin CLI client).
            admin = demo_client_token(platform, "fabrique-cli")
            _print(describe(platform, {"admin": admin} if admin else {}))
            for line in demo_hints(platform, admin) if admin else []:
                _print(line)
            _print(f"\nLogs and data: {run_dir}")
            while not stop.wait(0.5):
                dead = [
                    n for n, s in platform.services.items() if s.proc and s.proc.poll() is not None
                ]
                if platform.keycloak is not None and not platform.keycloak.is_running:
                    dead.append("keycloak")
                if dead or not platform.broker.is_running:
                    log.error("stopped unexpectedly: %s; see logs in %s", dead or "broker", run_dir)
                    return 1
            return 0
        finally:
            platform.stop()


def cmd_tail(args: argparse.Namespace) -> int:
    """Print the CloudEvents of a topic as JSON lines."""
    import asyncio

    from .platform import read_state, tail_topic

    bootstrap = args.bootstrap or read_state(default_run_dir())["kafka_bootstrap"]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail_topic(bootstrap, args.topic, args.from_beginning, args.limit))
    return 0


# --------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------


def _node_count(value: str) -> int:
    count = int(value)
    if not 1 <= count <= 9:
        raise argparse.ArgumentTypeError(f"--brokers takes 1 to 9 nodes, not {count}")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fabrique-stack",
        description="Fabrique's local stack: a real Kafka broker and a real PostgreSQL server "
        "on 127.0.0.1, no Docker.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser(
        "fetch", help="download the Kafka broker jars and Keycloak (Maven) into .cache/"
    )
    fetch.add_argument("--kafka-version", default=KAFKA_VERSION)
    fetch.add_argument("--force", action="store_true", help="fetch again even when cached")
    fetch.add_argument("--keycloak-version", default=KEYCLOAK_VERSION)
    fetch.add_argument("--no-keycloak", action="store_true", help="fetch Kafka only")
    fetch.set_defaults(func=cmd_fetch)

    broker = sub.add_parser("broker", help="run a Kafka broker in the foreground")
    broker.add_argument("--port", type=int, default=None, help="client port (default: free)")
    broker.add_argument("--data-dir", default=None, help="default: <repo>/.run/kafka")
    broker.add_argument("--heap", default="512m")
    broker.add_argument("--topics", default=None, help="topics file (deploy/topics.json)")
    broker.add_argument("--no-topics", action="store_true", help="create no topics")
    broker.add_argument("--timeout", type=float, default=90.0, help="start timeout (s)")
    broker.set_defaults(func=cmd_broker)

    postgres = sub.add_parser("postgres", help="run PostgreSQL in the foreground")
    postgres.add_argument("--port", type=int, default=None, help="default: a free port")
    postgres.add_argument("--data-dir", default=None, help="default: <repo>/.run/postgres")
    postgres.add_argument("--database", action="append", help="database to create (repeatable)")
    postgres.add_argument("--timeout", type=float, default=60.0, help="start timeout (s)")
    postgres.set_defaults(func=cmd_postgres)

    run = sub.add_parser("run", help="the whole platform: broker, services, demo data")
    run.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    run.add_argument("--kafka-port", type=int, default=None, help="default 9092 if free")
    run.add_argument(
        "--brokers",
        type=_node_count,
        default=1,
        help="Kafka nodes: 1 (default) or a KRaft cluster, e.g. 3 (replication 3, "
        "min.insync.replicas=2, free ports)",
    )
    run.add_argument("--data-dir", default=None, help="default: <repo>/.run")
    run.add_argument("--no-seed", action="store_true", help="start without demo data")
    run.add_argument("--fresh", action="store_true", help="delete previous data first")
    run.add_argument(
        "--no-keycloak", action="store_true", help="start without the identity provider"
    )
    run.set_defaults(func=cmd_run)

    tail = sub.add_parser("tail", help="print a topic's CloudEvents as JSON lines")
    tail.add_argument("topic")
    tail.add_argument("--bootstrap", default=None, help="default: the running stack's broker")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--limit", type=int, default=None, help="stop after N records")
    tail.set_defaults(func=cmd_tail)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        for noisy in ("aiokafka", "mail.log", "httpx"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace], Any] = args.func
    return int(func(args))


if __name__ == "__main__":
    sys.exit(main())
