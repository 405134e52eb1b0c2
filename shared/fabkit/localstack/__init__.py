"""Local stack without Docker: a real Apache Kafka broker (KRaft, from Maven jars) and a real
PostgreSQL server, both on 127.0.0.1. Used by the ``fabrique-stack`` CLI and the pytest fixtures
in :mod:`fabkit.testing`. See docs/local-kafka.md.
"""

from .kafka import (
    KAFKA_VERSION,
    KafkaBroker,
    LocalStackError,
    TopicSpec,
    ensure_topics,
    ensure_topics_sync,
    fetch_kafka_jars,
    kafka_libs_dir,
    load_topic_specs,
    repo_root,
    start_broker,
)
from .ports import free_port, free_ports
from .postgres import PostgresServer, find_pg_bindir, start_postgres

__all__ = [
    "KAFKA_VERSION",
    "KafkaBroker",
    "LocalStackError",
    "PostgresServer",
    "TopicSpec",
    "ensure_topics",
    "ensure_topics_sync",
    "fetch_kafka_jars",
    "find_pg_bindir",
    "free_port",
    "free_ports",
    "kafka_libs_dir",
    "load_topic_specs",
    "repo_root",
    "start_broker",
    "start_postgres",
]
