"""Vacancy → alert latency (row 1) and fan-out (row 2), on the whole platform as processes.

Latency: a landlord PATCHes units to `available` at a steady rate (open loop: request i is
sent at t0 + i/rate whatever the earlier ones are doing); each vacancy matches the one or two
saved searches of its unit's cell (bench/stack.py). For every webhook the receiver notes when
it arrived; latency = arrival − the moment the PATCH response was read, both on
CLOCK_MONOTONIC. Baseline: the broker's own produce → consume latency, same broker, same rate,
same message size, fabkit's producer and consumer settings.

Fan-out: one vacancy matching all the saved searches; the time from the PATCH returning to the
last webhook received, and deliveries per second while sending. Baseline: raw httpx POSTs of
the same bodies to the same receiver, with the worker's concurrency (16) and client settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text

from bench import say
from bench.stack import CpuMeter, RssSampler, Stack, searches_in_cell
from fabkit.db import make_engine
from fabkit.events import CloudEvent, encode_data, to_kafka_headers
from fabkit.kafka import make_consumer, make_producer
from fabkit.localstack.kafka import TopicSpec, ensure_topics


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    ordered = sorted(values)

    def q(p: float) -> float:
        # Nearest rank.
        return ordered[min(len(ordered) - 1, max(0, int(p * len(ordered) + 0.999999) - 1))]

    return {"p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": ordered[-1], "n": len(ordered)}


async def _steady(rate: float, count: int, action: Any) -> list[Any]:
    """Start action(i) at t0 + i/rate (open loop), return every result."""
    t0 = time.monotonic() + 0.05
    tasks = []
    for i in range(count):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(action(i)))
    return await asyncio.gather(*tasks)


# Row 1 ---------------------------------------------------------------------------------------


async def vacancy_latency(stack: Stack, units: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    inventory = stack.url("inventory")
    headers = {"Authorization": f"Bearer {stack.landlord_token}"}
    await stack.receiver.take()
    returned: dict[str, float] = {}
    patch_ms: list[float] = []
    failures = retried = 0
    expected = sum(searches_in_cell(u["cell"], stack.subscriptions) for u in units)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    meter = CpuMeter(
        {**stack.pids(), "receiver": stack.receiver.pid, "client": os.getpid()}
    ).start()
    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:

        async def open_vacancy(i: int) -> None:
            nonlocal failures, retried
            sent = time.monotonic()
            url = f"{inventory}/v1/units/{units[i]['id']}"
            try:
                response = await client.patch(url, headers=headers, json={"status": "available"})
            except httpx.TransportError:
                # A keep-alive connection the server closed as it was reused. Opening the same
                # vacancy again is harmless: a unit already available answers 200, unchanged,
                # with its vacancy id.
                retried += 1
                try:
                    response = await client.patch(
                        url, headers=headers, json={"status": "available"}
                    )
                except httpx.TransportError:
                    failures += 1
                    return
            body = response.content
            done = time.monotonic()
            if response.status_code != 200:
                failures += 1
                return
            returned[json.loads(body)["vacancy_id"]] = done
            patch_ms.append((done - sent) * 1000)

        started = time.monotonic()
        await _steady(rate, len(units), open_vacancy)
        sending = time.monotonic() - started
        got = await stack.receiver.wait_for(expected, timeout=60)
    cpu = meter.stop()
    notes = await stack.receiver.take()
    latencies = [(at - returned[v]) * 1000 for at, v, *_ in notes if v in returned]
    ids = [n[2] for n in notes]
    stages = await _stages(stack, notes, set(returned))
    return {
        "vacancies": len(units),
        "offered_rate": rate,
        "achieved_rate": len(units) / sending,
        "expected_webhooks": expected,
        "received": got,
        "duplicates": len(ids) - len(set(ids)),
        "patch_failures": failures,
        "patch_retried": retried,
        "latency_ms": percentiles(latencies),
        "patch_ms": percentiles(patch_ms),
        "stages_ms": stages,
        "cpu_percent": cpu,
    }


def _parse(stamp: str | datetime) -> float:
    if isinstance(stamp, datetime):
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


async def _stages(
    stack: Stack, notes: list[tuple[float, str, str, float]], vacancies: set[str]
) -> dict[str, float]:
    """Where the time went, from the timestamps the services wrote (wall clock): the vacancy's
    `opened_at` (set inside inventory's PATCH transaction) → its outbox row's `published_at`
    (marked once the broker acknowledged it) → the delivery row's `created_at` (notifications
    matched it, before its consumer's commit) → arrival at the receiver."""
    if not notes:
        return {}
    since = datetime.fromtimestamp(min(n[3] for n in notes) - 120, UTC).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    since_at = datetime.fromtimestamp(min(n[3] for n in notes) - 120, UTC)

    async def rows(service: str, sql: str) -> list[Any]:
        engine = make_engine(stack.db_url(service))
        try:
            async with engine.connect() as conn:
                # SQLite keeps these columns as ISO text, PostgreSQL as timestamptz.
                param = since if stack.db_url(service).startswith("sqlite") else since_at
                return list((await conn.execute(text(sql), {"since": param})).all())
        finally:
            await engine.dispose()

    delivery_rows = await rows(
        "notifications",
        "SELECT id, occurred_at, created_at FROM deliveries"
        " WHERE channel = 'webhook' AND occurred_at >= :since",
    )
    outbox = await rows(
        "inventory",
        "SELECT envelope, published_at FROM outbox_messages"
        " WHERE event_type = 'inventory.unit.vacancy_opened.v1' AND created_at >= :since"
        " AND published_at IS NOT NULL",
    )
    published = {
        (json.loads(e) if isinstance(e, str) else e)["data"]["vacancy_id"]: _parse(p)
        for e, p in outbox
    }
    deliveries = {i: (_parse(o), _parse(c)) for i, o, c in delivery_rows}
    spans: dict[str, list[float]] = {
        "opened_to_published": [],
        "published_to_matched": [],
        "opened_to_matched": [],
        "matched_to_received": [],
    }
    for _, vacancy, webhook_id, wall in notes:
        if vacancy not in vacancies or webhook_id not in deliveries:
            continue
        opened, matched = deliveries[webhook_id]
        spans["opened_to_matched"].append((matched - opened) * 1000)
        spans["matched_to_received"].append((wall - matched) * 1000)
        if vacancy in published:
            spans["opened_to_published"].append((published[vacancy] - opened) * 1000)
            spans["published_to_matched"].append((matched - published[vacancy]) * 1000)
    out: dict[str, float] = {}
    for name, values in spans.items():
        if values:
            out[f"{name}_p50"] = statistics.median(values)
            out[f"{name}_p99"] = percentiles(values)["p99"]
    return out


async def broker_latency(bootstrap: str, rate: float, count: int, size: int) -> dict[str, Any]:
    """Produce → consume on the same broker with fabkit's client settings, at the same rate."""
    topic = f"bench.latency.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [TopicSpec(topic, 6, 3_600_000)])
    producer = make_producer(bootstrap, "bench-latency")
    group = f"bench-latency-{uuid.uuid4().hex[:6]}"
    consumer = make_consumer(bootstrap, group, "bench-latency", topic)
    await producer.start()
    await consumer.start()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        await asyncio.sleep(0.5)
        padding = "x" * max(0, size - 200)

        async def consume() -> None:
            while len(latencies) < count:
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                now = time.monotonic()
                for records in batches.values():
                    for record in records:
                        key = dict(record.headers).get("ce_id", b"").decode()
                        if key in sent_at:
                            latencies.append((now - sent_at[key]) * 1000)

        reader = asyncio.create_task(consume())

        async def send(i: int) -> None:
            event = CloudEvent(
                source="/bench", type="bench.latency.v1", subject=f"u{i}", data={"pad": padding}
            )
            sent_at[event.id] = time.monotonic()
            await producer.send_and_wait(
                topic,
                value=encode_data(event),
                key=f"u{i}".encode(),
                headers=to_kafka_headers(event),
            )

        await _steady(rate, count, send)
        await asyncio.wait_for(reader, 30)
    finally:
        await producer.stop()
        await consumer.stop()
    return {"messages": count, "latency_ms": percentiles(latencies)}


# Row 2 ---------------------------------------------------------------------------------------


async def fanout(stack: Stack, unit_id: str, timeout: float) -> dict[str, Any]:
    inventory = stack.url("inventory")
    await stack.receiver.take()
    pids = stack.pids()
    meter = CpuMeter({**pids, "receiver": stack.receiver.pid, "client": os.getpid()}).start()
    with RssSampler({"notifications": pids["notifications"]}) as rss:
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            response = await client.patch(
                f"{inventory}/v1/units/{unit_id}",
                headers={"Authorization": f"Bearer {stack.landlord_token}"},
                json={"status": "available"},
            )
            returned = time.monotonic()
            if response.status_code != 200:
                raise RuntimeError(f"fan-out PATCH: {response.status_code} {response.text[:300]}")
            vacancy = response.json()["vacancy_id"]
        await stack.receiver.wait_for(stack.subscriptions, timeout=timeout, quiet=0.5)
    cpu = meter.stop()
    notes = [n for n in await stack.receiver.take() if n[1] == vacancy]
    times = sorted(n[0] for n in notes)
    if not times:
        raise RuntimeError(f"no fan-out webhook within {timeout} s")
    ids = {n[2] for n in notes}
    first, last = times[0] - returned, times[-1] - returned
    per_s = len(times) / max(times[-1] - times[0], 1e-9)
    return {
        "expected": stack.subscriptions,
        "received": len(times),
        "distinct": len(ids),
        "timeout_s": timeout,
        "first_s": first,
        "last_s": last,
        # When not all arrived: the time all would take at the rate seen.
        "all_s_estimate": first + stack.subscriptions / per_s,
        "per_s": per_s,
        "cpu_percent": cpu,
        "notifications_peak_rss_mib": rss.peak["notifications"],
    }


async def raw_posts(url: str, count: int, concurrency: int = 16) -> dict[str, Any]:
    """httpx POSTs of a vacancy-sized signed body, `concurrency` in flight, as the worker's
    client is configured (timeout, no redirects, no proxy from the environment)."""
    from notifications.webhooks import generate_secret, signed_headers

    secret = generate_secret()
    body_template = {
        "type": "vacancy.opened",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "data": {
            "vacancy_id": "raw",
            "unit": {"unit_id": str(uuid.uuid4()), "site_name": "x" * 40, "pad": "y" * 900},
            "why": {"criteria": ["a" * 40] * 4, "eligibility": {"summary": "z" * 60}},
        },
    }
    body = json.dumps(body_template, separators=(",", ":")).encode()
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=10, follow_redirects=False, trust_env=False) as client:

        async def post(i: int) -> None:
            async with gate:
                headers = signed_headers(secret, str(uuid.uuid4()), body)
                async with client.stream(
                    "POST", f"{url}/hooks/raw", content=body, headers=headers
                ) as r:
                    if r.status_code != 200:
                        raise RuntimeError(f"receiver answered {r.status_code}")

        await post(-1)  # connection warm-up
        started = time.monotonic()
        await asyncio.gather(*(post(i) for i in range(count)))
        elapsed = time.monotonic() - started
    return {"posts": count, "seconds": elapsed, "per_s": count / elapsed}


async def run_latency(
    stack: Stack, *, rates: list[float], seconds: float, repeats: int
) -> dict[str, Any]:
    """For each repetition: the broker baseline at the highest rate, then each rate."""
    out: dict[str, Any] = {"broker": [], "rates": {str(r): [] for r in rates}, "seconds": seconds}
    bootstrap = stack.platform.broker.bootstrap
    taken = 0
    for r in range(repeats):
        top = max(rates)
        out["broker"].append(await broker_latency(bootstrap, top, int(top * seconds), size=2048))
        say(f"  broker latency #{r + 1}: {_fmt(out['broker'][-1]['latency_ms'])}")
        for rate in rates:
            count = int(rate * seconds)
            units = stack.latency_units[taken : taken + count]
            taken += count
            if len(units) < count:
                raise RuntimeError("not enough latency units seeded")
            result = await vacancy_latency(stack, units, rate)
            out["rates"][str(rate)].append(result)
            say(
                f"  vacancy latency {rate:g}/s #{r + 1}: {_fmt(result['latency_ms'])} "
                f"({result['received']}/{result['expected_webhooks']} webhooks, PATCH p50 "
                f"{result['patch_ms']['p50']:.0f} ms, achieved {result['achieved_rate']:.1f}/s)"
            )
            await _settle(stack)
    out["median"] = {
        "broker": _median_pcts(out["broker"]),
        **{rate: _median_pcts(runs) for rate, runs in out["rates"].items()},
    }
    return out


async def run_fanout(stack: Stack, *, repeats: int, timeout: float) -> dict[str, Any]:
    """Raw httpx baseline then the fan-out vacancy, per repetition. The fan-out runs last on
    the platform: a run that hits `timeout` leaves deliveries in flight."""
    fanouts, raws = [], []
    for r in range(repeats):
        raws.append(await raw_posts(stack.receiver.url, stack.subscriptions))
        await stack.receiver.take()
        say(f"  raw httpx #{r + 1}: {raws[-1]['per_s']:.0f}/s")
        fanouts.append(await fanout(stack, stack.fanout_units[r], timeout))
        f = fanouts[-1]
        say(
            f"  fan-out #{r + 1}: {f['received']}/{f['expected']} webhooks, first after "
            f"{f['first_s']:.1f} s, last after {f['last_s']:.1f} s, {f['per_s']:.0f}/s"
        )
        if f["received"] < f["expected"]:
            break
        await _settle(stack)
    return {
        "fanout": fanouts,
        "raw": raws,
        "median": {
            "complete": all(f["received"] >= f["expected"] for f in fanouts),
            "received": statistics.median(f["received"] for f in fanouts),
            "expected": fanouts[0]["expected"],
            "first_s": statistics.median(f["first_s"] for f in fanouts),
            "last_s": statistics.median(f["last_s"] for f in fanouts),
            "all_s_estimate": statistics.median(f["all_s_estimate"] for f in fanouts),
            "per_s": statistics.median(f["per_s"] for f in fanouts),
            "raw_per_s": statistics.median(x["per_s"] for x in raws),
            "notifications_peak_rss_mib": max(f["notifications_peak_rss_mib"] for f in fanouts),
        },
    }


def _median_pcts(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {k: statistics.median(x["latency_ms"][k] for x in runs) for k in ("p50", "p95", "p99")}


def _fmt(p: dict[str, float]) -> str:
    return f"p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, p99 {p['p99']:.1f} ms (n={p['n']})"


async def _settle(stack: Stack) -> None:
    from bench.stack import settle

    await settle(stack)
