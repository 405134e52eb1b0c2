"""aiokafka producer and consumer factories with safe defaults."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

log = logging.getLogger(__name__)

C = TypeVar("C", AIOKafkaProducer, AIOKafkaConsumer)


def make_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer (acks=all): a retried send is written once per partition."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
    )


#: The broker's bounds on a member's session (group.min/max.session.timeout.ms defaults).
SESSION_TIMEOUT_MS_MIN = 6000
SESSION_TIMEOUT_MS_MAX = 300000
#: Without a setting: the session a member gets (a dead member's partitions wait this long).
DEFAULT_SESSION_TIMEOUT_MS = 10000
DEFAULT_HEARTBEAT_INTERVAL_MS = 1000


def make_consumer(
    bootstrap: str,
    group_id: str,
    client_id: str,
    *topics: str,
    group_instance_id: str | None = None,
    session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
) -> AIOKafkaConsumer:
    """A group consumer whose offsets move only when the caller commits them.

    ``group_instance_id`` makes it a static member (KIP-345): a process that comes back under
    the same id within ``session_timeout_ms`` gets its partitions back without a rebalance,
    but it does not leave the group when it stops, so its partitions wait for the session to
    expire before another member takes them (docs/operations.md, "Replicas")."""
    if not SESSION_TIMEOUT_MS_MIN <= session_timeout_ms <= SESSION_TIMEOUT_MS_MAX:
        raise ValueError(
            f"session_timeout_ms {session_timeout_ms} is outside the broker's bounds "
            f"[{SESSION_TIMEOUT_MS_MIN}, {SESSION_TIMEOUT_MS_MAX}]"
        )
    if heartbeat_interval_ms * 3 > session_timeout_ms:
        raise ValueError(
            f"heartbeat_interval_ms {heartbeat_interval_ms} must be at most a third of "
            f"session_timeout_ms {session_timeout_ms}"
        )
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=200,
        group_instance_id=group_instance_id or None,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        retry_backoff_ms=200,
    )


async def start_with_retry(
    factory: Callable[[], C],
    what: str,
    stop: asyncio.Event,
    *,
    max_backoff: float = 5.0,
) -> C | None:
    """Start a fresh client, retrying while the broker is unreachable; None if asked to stop."""
    backoff = 0.2
    while not stop.is_set():
        client = factory()
        try:
            await client.start()
            return client
        except Exception as exc:  # aiokafka raises several unrelated types here
            log.warning("%s: broker not reachable (%s); retrying in %.1fs", what, exc, backoff)
            with contextlib.suppress(Exception):
                await client.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=backoff)
            backoff = min(backoff * 2, max_backoff)
    return None
