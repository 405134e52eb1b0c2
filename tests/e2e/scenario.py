"""A stream of vacancy changes over a set of units watched by a set of subscriptions, and the
checks every fault scenario ends with: each acknowledged write has its events on Kafka, each
acknowledged opening its alerts, nothing arrives twice under two ids."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from fabkit.localstack.platform import Platform

from .harness import (
    UNIT_TOPIC,
    UNIT_UPDATED,
    AlertBook,
    Api,
    Counts,
    KafkaTap,
    Mailbox,
    Receiver,
    Subscription,
    check,
    eventually,
    header_map,
    months_later,
    tag,
    today,
    wait_caught_up,
)


@dataclass
class Write:
    unit_id: str
    status: str
    outcome: str  # "acknowledged", "refused <code>", "no answer <error>"
    version: int | None = None
    vacancy_id: str | None = None


@dataclass
class World:
    """One landlord's site and units, and the artisans' searches that match all of them."""

    api: Api
    landlord: str
    units: list[dict[str, Any]]
    subs: list[Subscription]
    book: AlertBook
    trade: str
    writes: list[Write] = field(default_factory=list)

    @classmethod
    async def build(
        cls,
        platform: Platform,
        api: Api,
        mailbox: Mailbox,
        receivers: list[Receiver],
        *,
        units: int,
        prefix: str,
    ) -> World:
        """One subscription (webhook + e-mail + feed) per receiver, each of its own eligible
        artisan, all matching every unit (a trade only this world uses)."""
        trade = tag(prefix)
        _, landlord = await api.new_landlord()
        site = await api.new_site(landlord, arrondissement=19)
        made = [
            await api.new_unit(landlord, site["id"], trades=[trade], reference=f"K{i:03d}")
            for i in range(units)
        ]
        artisans = [await api.register_artisan([trade]) for _ in receivers]
        await wait_caught_up(platform.broker.bootstrap, "notifications", ["leasing.artisan.events"])
        book = AlertBook(api, mailbox)
        subs = []
        for artisan, receiver in zip(artisans, receivers, strict=True):
            sub = await api.subscribe(artisan, criteria={"trades": [trade]}, receiver=receiver)
            subs.append(book.add(sub, receiver))
        return cls(api, landlord, made, subs, book, trade)

    async def change(self, unit_id: str, status: str) -> Write:
        try:
            response = await self.api.set_status(self.landlord, unit_id, status)
        except httpx.HTTPError as exc:
            write = Write(unit_id, status, f"no answer {type(exc).__name__}")
        else:
            if response.status_code == 200:
                body = response.json()
                write = Write(unit_id, status, "acknowledged", body["version"], body["vacancy_id"])
                if status == "available":
                    assert body["vacancy_id"], body
                    self.book.expect(body["vacancy_id"])
            else:
                write = Write(unit_id, status, f"refused {response.status_code}")
        self.writes.append(write)
        return write

    @property
    def acknowledged(self) -> list[Write]:
        return [w for w in self.writes if w.outcome == "acknowledged"]


async def toggle_stream(
    world: World,
    changes: int,
    seconds: float,
    on_progress: dict[int, Any] | None = None,
) -> None:
    """``changes`` status changes spread over ``seconds``: unit i%n alternately opens and
    closes. ``on_progress[k]`` (a callable returning an awaitable or None) runs, without
    pausing the stream, once k changes were sent."""
    hooks = dict(on_progress or {})
    pace = seconds / max(changes, 1)
    state = {u["id"]: u["status"] for u in world.units}
    started = time.monotonic()
    tasks: list[asyncio.Task[Any]] = []
    for i in range(changes):
        if i in hooks:
            result = hooks.pop(i)()
            if result is not None:
                tasks.append(asyncio.ensure_future(result))
        unit = world.units[i % len(world.units)]
        target = "unavailable" if state[unit["id"]] == "available" else "available"
        write = await world.change(unit["id"], target)
        if write.outcome == "acknowledged":
            state[unit["id"]] = target
        delay = started + (i + 1) * pace - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    for task in tasks:
        await task


@dataclass
class EventCheck:
    published: int
    kafka_duplicates: int
    missing: list[str]  # acknowledged writes without their events
    out_of_order: list[str]  # units whose distinct events are not in version order
    versions: dict[str, list[int]]  # unit -> versions of its unit.updated events, in order
    last_version: dict[str, int]


async def check_events(tap: KafkaTap, world: World) -> EventCheck:
    """Every acknowledged write has its unit.updated (its version) and, for an opening, its
    vacancy_opened (its vacancy id); one unit's distinct events come in version order."""
    units = {u["id"] for u in world.units}
    seen_ids: set[str] = set()
    records = 0
    versions: dict[str, list[int]] = defaultdict(list)
    opened: set[str] = set()
    for record in sorted(await tap.read(UNIT_TOPIC), key=lambda r: (r.partition, r.offset)):
        key = record.key.decode() if record.key else ""
        if key not in units:
            continue
        records += 1
        headers = header_map(record)
        if headers["ce_id"] in seen_ids:
            continue
        seen_ids.add(headers["ce_id"])
        data = json.loads(record.value)
        if headers["ce_type"] == "inventory.unit.vacancy_opened.v1":
            opened.add(data["vacancy_id"])
        if headers["ce_type"] == UNIT_UPDATED:
            versions[key].append(int(data["unit"]["version"]))
    missing = []
    for write in world.acknowledged:
        if write.version not in versions.get(write.unit_id, []):
            missing.append(f"{write.unit_id} v{write.version} ({write.status}): no unit.updated")
        if write.vacancy_id and write.vacancy_id not in opened:
            missing.append(f"{write.unit_id} vacancy {write.vacancy_id}: no vacancy_opened")
    out_of_order = [u for u, vs in versions.items() if vs != sorted(vs)]
    return EventCheck(
        published=len(seen_ids),
        kafka_duplicates=records - len(seen_ids),
        missing=missing,
        out_of_order=out_of_order,
        versions=dict(versions),
        last_version={u: max(vs) for u, vs in versions.items()},
    )


async def converged(world: World, platform: Platform, timeout: float = 120) -> list[str]:
    """Leasing's view of every unit equals inventory's once its consumer caught up."""
    await wait_caught_up(platform.broker.bootstrap, "leasing", [UNIT_TOPIC], timeout)
    await wait_caught_up(platform.broker.bootstrap, "notifications", [UNIT_TOPIC], timeout)
    differences = []
    for unit in world.units:
        mine = await world.api.unit(unit["id"])
        theirs = await world.api.leasing_unit(unit["id"])
        if theirs is None or (theirs["status"], theirs["vacancy_id"]) != (
            mine["status"],
            mine["vacancy_id"],
        ):
            differences.append(
                f"{unit['id']}: inventory {mine['status']}/{mine['vacancy_id']} leasing "
                f"{theirs and (theirs['status'], theirs['vacancy_id'])}"
            )
    return differences


def fill_writes(counts: Counts, world: World, events: EventCheck) -> None:
    counts.sent = len(world.writes)
    counts.acknowledged = len(world.acknowledged)
    counts.published = events.published
    counts.lost += len(events.missing)
    counts.extra["events_missing"] = len(events.missing)
    counts.extra["kafka_duplicate_records"] = events.kafka_duplicates
    counts.extra["vacancies_opened"] = len(world.book.vacancies)
    counts.extra["refused_or_unanswered"] = len(world.writes) - len(world.acknowledged)


PROJECT = "Hand-made furniture for the neighbourhood; one bench, one apprentice, open on Saturdays."


async def close_call(
    api: Api, landlord: str, call_id: str, *, ahead_s: float = 2.0, timeout: float = 60
) -> dict[str, Any]:
    """Close a call for applications the honest way: its landlord moves the closing date a
    couple of seconds ahead (PATCH with If-Match), then leasing's closing worker, passing that
    date, closes it and freezes its ranking."""
    url = api.url("leasing", f"/v1/calls/{call_id}")
    current = await api.client.get(url)
    call = check(current, 200)
    if call["status"] == "open":
        closes_at = datetime.now(UTC) + timedelta(seconds=ahead_s)
        check(
            await api.write(
                "PATCH", "leasing", f"/v1/calls/{call_id}", landlord,
                json={"closes_at": closes_at.isoformat()},
                headers={"If-Match": current.headers["ETag"]},
            ),
            200,
        )  # fmt: skip

    async def closed() -> Any:
        found = check(await api.client.get(url), 200)
        return found if found["status"] != "open" else None

    return await eventually(closed, timeout=timeout, what="the closing worker to close the call")  # type: ignore[no-any-return]


async def lease_unit(
    api: Api, landlord: str, unit_id: str, vacancy_id: str, artisan: Any
) -> dict[str, Any]:
    """The artisan applies to the open vacancy, the landlord offers, the artisan signs."""

    async def listed() -> Any:
        listing = await api.leasing_unit(unit_id)
        return listing if listing and listing["vacancy_id"] == vacancy_id else None

    await eventually(listed, timeout=60, what="leasing to list the vacancy")
    application = check(
        await api.write(
            "POST", "leasing", "/v1/applications", artisan.token,
            json={"unit_id": unit_id, "project": PROJECT},
        ),
        201,
    )  # fmt: skip
    await close_call(api, landlord, application["call_id"])
    start = today()
    lease = check(
        await api.write(
            "POST", "leasing", f"/v1/applications/{application['id']}/offer", landlord,
            json={"monthly_rent_eur": "900.00", "start_date": start.isoformat(),
                  "end_date": months_later(start, 12).isoformat()},
        ),
        201,
    )  # fmt: skip
    signed = check(
        await api.write("POST", "leasing", f"/v1/leases/{lease['id']}/accept", artisan.token), 200
    )
    assert signed["status"] == "active", signed
    return signed  # type: ignore[no-any-return]


async def unit_status(api: Api, unit_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
    async def probe() -> Any:
        current = await api.unit(unit_id)
        return current if current["status"] == status else None

    return await eventually(probe, timeout=timeout, what=f"unit {unit_id} to be {status}")  # type: ignore[no-any-return]
