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


def make_consumer(bootstrap: str, group_id: str, client_id: str, *topics: str) -> AIOKafkaConsumer:
    """A group consumer whose offsets move only when the caller commits them."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=200,
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
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
