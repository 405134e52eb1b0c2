"""The long-lived resources of one service process, started and stopped by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.consumer import ConsumerRunner, TopicHandlers
from fabkit.db import make_engine, make_session_factory
from fabkit.kafka import make_consumer, make_producer
from fabkit.metrics import ServiceMetrics
from fabkit.oidc import JwksTokenVerifier
from fabkit.outbox import OUTBOX_SIGNAL, OutboxRelay, OutboxSignal
from fabkit.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group of a service: the topics it reads and what it does with them."""

    group_id: str
    topics: Mapping[str, TopicHandlers]
    dlq_topic: str


@dataclass
class Runtime:
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    metrics: ServiceMetrics
    verifier: JwksTokenVerifier
    signal: OutboxSignal
    relay: OutboxRelay
    consumers: list[ConsumerRunner] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def sessions_for(self, method: str) -> async_sessionmaker[AsyncSession]:
        """Sessions for a request: GET and HEAD handlers only read, so they get read-only ones."""
        return self.read_sessions if method in ("GET", "HEAD") else self.sessions

    def refresh_gauges(
        self,
        refresh: Callable[[async_sessionmaker[AsyncSession]], Awaitable[None]],
        every: float = 5.0,
    ) -> None:
        """Refresh gauges read from the database on a timer (never at scrape time) until stop."""

        async def loop() -> None:
            while not self.stop.is_set():
                try:
                    await refresh(self.read_sessions)
                except Exception as exc:
                    log.warning("could not refresh the gauges: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), every)

        self.tasks.append(asyncio.create_task(loop(), name="gauges"))

    def start_background(self) -> None:
        if self.settings.run_relay:
            self.tasks.append(asyncio.create_task(self.relay.run(self.stop), name="outbox-relay"))
        if self.settings.run_consumers:
            for runner in self.consumers:
                self.tasks.append(asyncio.create_task(runner.run(self.stop), name=runner.group_id))

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            try:
                await asyncio.wait_for(task, 15)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:
                log.exception("background task %s failed", task.get_name())
        await self.verifier.aclose()
        await self.engine.dispose()


def build_runtime(
    settings: ServiceSettings, consumer_specs: list[ConsumerSpec] | None = None
) -> Runtime:
    engine = make_engine(settings.database_url)
    signal = OutboxSignal()
    sessions = make_session_factory(engine, info={OUTBOX_SIGNAL: signal})
    read_sessions = make_session_factory(engine, read_only=True)
    metrics = ServiceMetrics.for_service(settings.service_name)
    client_id = settings.kafka_client_id or settings.service_name

    def producer_factory():  # type: ignore[no-untyped-def]
        return make_producer(settings.kafka_bootstrap, client_id)

    relay = OutboxRelay(
        sessions,
        producer_factory,
        metrics,
        signal,
        is_postgres=not settings.is_sqlite,
        batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval_s,
        read_session_factory=read_sessions,
    )
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        read_sessions=read_sessions,
        metrics=metrics,
        verifier=JwksTokenVerifier(
            settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url or None
        ),
        signal=signal,
        relay=relay,
    )
    for spec in consumer_specs or []:
        runtime.consumers.append(
            ConsumerRunner(
                group_id=spec.group_id,
                topics=spec.topics,
                session_factory=sessions,
                consumer_factory=_consumer_factory(settings, spec, client_id),
                producer_factory=producer_factory,
                dlq_topic=spec.dlq_topic,
                metrics=metrics,
                max_attempts=settings.consumer_max_attempts,
                retry_backoff=settings.consumer_retry_backoff_s,
            )
        )
    return runtime


def _consumer_factory(settings: ServiceSettings, spec: ConsumerSpec, client_id: str) -> Callable:  # type: ignore[type-arg]
    def factory():  # type: ignore[no-untyped-def]
        return make_consumer(
            settings.kafka_bootstrap, spec.group_id, client_id, *spec.topics,
            group_instance_id=settings.kafka_group_instance_id,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        )  # fmt: skip

    return factory


def runtime_lifespan(
    make: Callable[[], Runtime],
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """A FastAPI lifespan that builds the runtime, exposes it on app.state and tears it down."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = make()
        runtime.signal.bind()
        app.state.runtime = runtime
        app.state.verifier = runtime.verifier
        app.state.settings = runtime.settings
        runtime.start_background()
        try:
            yield
        finally:
            await runtime.close()

    return lifespan
