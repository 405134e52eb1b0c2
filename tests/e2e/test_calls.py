"""A call for applications end to end on real processes, through the public APIs: a PATCH to
available opens a vacancy and leasing its call; three artisans apply; leasing's clock (its
clock file) passes the closing date and the closing worker freezes the ranking; a late
application is refused with the closing date; an offer to the third in rank is refused without
a reason and made with one; its decline passes the offer to the next in rank; the signature
decides the call. Then 50 simultaneous offers on one call end in exactly one lease."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fabkit.localstack.platform import Platform

from .conftest import database_of
from .harness import (
    Api,
    Counts,
    check,
    eventually,
    months_later,
    tag,
    today,
)
from .scenario import PROJECT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

N = 50
GROUND = {"ground": "jury_decision", "explanation": "The jury preferred this project in session."}


async def _open_call(api: Api, landlord: str, trade: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new unit made available, and its call once leasing opened it."""
    site = await api.new_site(landlord, kind="hotel_industriel", arrondissement=20)
    unit = await api.new_unit(landlord, site["id"], trades=[trade], surface=90)
    opened = check(await api.set_status(landlord, unit["id"], "available"), 200)

    async def call() -> Any:
        r = await api.client.get(api.url("leasing", "/v1/calls"), params={"unit_id": unit["id"]})
        items = check(r, 200)["items"]
        return items[0] if items and items[0]["vacancy_id"] == opened["vacancy_id"] else None

    return unit, await eventually(call, timeout=60, what="leasing to open the call")


async def _apply(api: Api, artisan: Any, unit_id: str) -> dict[str, Any]:
    return check(  # type: ignore[no-any-return]
        await api.write(
            "POST", "leasing", "/v1/applications", artisan.token,
            json={"unit_id": unit_id, "project": PROJECT},
        ),
        201,
    )  # fmt: skip


def _terms(**extra: Any) -> dict[str, Any]:
    # leasing's clock runs 22 days ahead once the closing date passed: a start date in its future
    start = today() + timedelta(days=23)
    return {
        "monthly_rent_eur": "700.00",
        "start_date": start.isoformat(),
        "end_date": months_later(start, 12).isoformat(),
        **extra,
    }


async def _pass_the_closing_date(api: Api, clock_file: Path, call: dict[str, Any]) -> Any:
    """Move leasing's clock a day past every open call's closing date, and wait for the
    closing worker to close this one."""
    clock_file.write_text(str(22 * 24 * 3600))
    url = api.url("leasing", f"/v1/calls/{call['id']}")

    async def closed() -> Any:
        found = check(await api.client.get(url), 200)
        return found if found["status"] == "closed" else None

    return await eventually(closed, timeout=30, what="the closing worker to close the call")


async def test_a_call_from_opening_to_a_signed_lease(
    clock_platform: Platform,
    api_for: Callable[[Platform], Api],
    clock_file: Path,
    report: Callable[[Counts], None],
) -> None:
    platform, started = clock_platform, time.monotonic()
    api = api_for(platform)
    counts = Counts("calls", database_of(platform))
    clock_file.write_text("0")
    trade = tag("calls")
    _, landlord = await api.new_landlord()
    unit, call = await _open_call(api, landlord, trade)
    assert call["status"] == "open" and call["counts"]["applications"] == 0

    first = await api.register_artisan([trade], legal_form="scop", labels=["esus"], name="Aïcha")
    second = await api.register_artisan([trade], legal_form="sas", name="Bruno")
    third = await api.register_artisan([trade], legal_form="sas", name="Chloé")
    apps = [await _apply(api, a, unit["id"]) for a in (first, second, third)]
    assert all(a["call_id"] == call["id"] for a in apps)
    assert apps[0]["score"] > apps[1]["score"] == apps[2]["score"]
    # no offer while the call is open
    r = await api.write(
        "POST", "leasing", f"/v1/applications/{apps[0]['id']}/offer", landlord, json=_terms()
    )
    assert r.status_code == 409 and "frozen" in r.json()["detail"], r.text

    # The clock passes the closing date: the worker closes the call and freezes its ranking.
    closed = await _pass_the_closing_date(api, clock_file, call)
    assert closed["ranking_frozen_at"] and closed["counts"]["ranked"] == 3
    ranking = check(
        await api.client.get(
            api.url("leasing", f"/v1/calls/{call['id']}/ranking"),
            headers={"Authorization": f"Bearer {landlord}"},
        ),
        200,
    )
    assert [e["application_id"] for e in ranking["entries"]] == [a["id"] for a in apps]
    late = await api.register_artisan([trade], legal_form="sas", name="Tard")
    r = await api.write(
        "POST", "leasing", "/v1/applications", late.token,
        json={"unit_id": unit["id"], "project": PROJECT},
    )  # fmt: skip
    assert r.status_code == 409 and "closed at" in r.json()["detail"], r.text
    mine = check(
        await api.client.get(
            api.url("leasing", f"/v1/applications/{apps[1]['id']}"),
            headers={"Authorization": f"Bearer {second.token}"},
        ),
        200,
    )
    assert (mine["call"]["rank"], mine["call"]["ranked_among"]) == (2, 3)

    # An offer to the third: refused without a reason (naming who comes first), made with one.
    offer_path = f"/v1/applications/{apps[2]['id']}/offer"
    r = await api.write("POST", "leasing", offer_path, landlord, json=_terms())
    assert r.status_code == 422, r.text
    assert "Aïcha" in r.json()["detail"] and apps[0]["id"] in r.json()["detail"]
    r = await api.write("POST", "leasing", offer_path, landlord, json=_terms(out_of_rank=GROUND))
    offered = check(r, 201)
    decision = check(
        await api.client.get(
            api.url("leasing", f"/v1/applications/{apps[2]['id']}"),
            headers={"Authorization": f"Bearer {third.token}"},
        ),
        200,
    )["decisions"][-1]
    assert (decision["ground"], decision["reason"]) == ("jury_decision", GROUND["explanation"])
    assert (
        check(await api.client.get(api.url("leasing", f"/v1/calls/{call['id']}")), 200)["status"]
        == "under_review"
    )

    # The third declines: the offer passes to the first in rank still in the running.
    check(
        await api.write(
            "POST", "leasing", f"/v1/leases/{offered['id']}/decline", third.token,
            json={"reason": "Trop loin de chez moi"},
        ),
        200,
    )  # fmt: skip
    passed = check(
        await api.client.get(
            api.url("leasing", f"/v1/applications/{apps[0]['id']}"),
            headers={"Authorization": f"Bearer {first.token}"},
        ),
        200,
    )
    assert passed["status"] == "offered" and passed["decisions"][-1]["actor_role"] == "system"
    signed = check(
        await api.write("POST", "leasing", f"/v1/leases/{passed['lease_id']}/accept", first.token),
        200,
    )
    assert signed["status"] == "active" and signed["monthly_rent_eur"] == 700
    decided = check(await api.client.get(api.url("leasing", f"/v1/calls/{call['id']}")), 200)
    assert decided["status"] == "decided" and decided["decided_at"]

    # Inventory hears of the lease: the unit is leased.
    async def leased() -> Any:
        return (await api.unit(unit["id"]))["status"] == "leased"

    await eventually(leased, timeout=60, what="inventory to mark the unit leased")
    api.count_into(counts)
    counts.extra["ranked"] = closed["counts"]["ranked"]
    counts.seconds = time.monotonic() - started
    report(counts)


async def test_fifty_simultaneous_offers_on_one_call_make_one_lease(
    clock_platform: Platform,
    api_for: Callable[[Platform], Api],
    clock_file: Path,
    report: Callable[[Counts], None],
) -> None:
    platform, started = clock_platform, time.monotonic()
    api = api_for(platform)
    counts = Counts("calls-50-offers", database_of(platform))
    clock_file.write_text("0")
    trade = tag("calls50")
    _, landlord = await api.new_landlord()
    unit, call = await _open_call(api, landlord, trade)
    artisans = [await api.register_artisan([trade], legal_form="sas") for _ in range(N)]
    apps = [await _apply(api, a, unit["id"]) for a in artisans]
    await _pass_the_closing_date(api, clock_file, call)

    # Every one offered at once: the first in rank plainly, the others out of rank on a ground.
    offers = await asyncio.gather(
        *(
            api.write(
                "POST", "leasing", f"/v1/applications/{a['id']}/offer", landlord,
                json=_terms(**({"out_of_rank": GROUND} if i else {})),
            )
            for i, a in enumerate(apps)
        )
    )  # fmt: skip
    statuses = Counter(r.status_code for r in offers)
    assert statuses == {201: 1, 409: N - 1}, [r.text for r in offers if r.status_code != 409]
    leases = check(
        await api.client.get(
            api.url("leasing", "/v1/leases"),
            params={"unit_id": unit["id"], "limit": 100},
            headers={"Authorization": f"Bearer {landlord}"},
        ),
        200,
    )
    assert [x["status"] for x in leases["items"]] == ["offered"]
    api.count_into(counts)
    counts.extra["offers_201"] = statuses[201]
    counts.extra["offers_409"] = statuses[409]
    counts.seconds = time.monotonic() - started
    report(counts)
