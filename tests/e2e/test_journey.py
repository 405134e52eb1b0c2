"""The journey across the three services, on SQLite and on PostgreSQL, driven only through the
public APIs: a landlord registers a site and a unit and opens a vacancy; subscribed artisans hear
of it by signed webhook, e-mail and feed (an ineligible one does not); two apply, are ranked, the
best is offered a lease and accepts; inventory shows the unit leased and the vacancy closed; the
lease ends and the vacancy, with its alerts, comes back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from fabkit.localstack.platform import Platform

from .conftest import database_of
from .harness import (
    UNIT_TOPIC,
    AlertBook,
    Api,
    Counts,
    KafkaTap,
    Mailbox,
    ReceiverHub,
    bearer,
    check,
    eventually,
    header_map,
    months_later,
    tag,
    today,
    wait_caught_up,
)
from .scenario import close_call

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PROJECT = "Cabinet-making for Paris restaurants; two benches, one apprentice from the quarter."


async def test_vacancy_to_lease_and_back(
    scenario_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = scenario_platform
    started = time.monotonic()
    api, mailbox = api_for(platform), mailbox_for(platform)
    bootstrap = platform.broker.bootstrap
    counts = Counts("journey", database_of(platform))
    book = AlertBook(api, mailbox)
    receiver = receiver_hub.make("ok")
    trade = tag("journey")

    # The landlord registers a site and a unit (not on the market yet).
    _, landlord = await api.new_landlord()
    site = await api.new_site(landlord, kind="hotel_industriel", arrondissement=11)
    unit = await api.new_unit(landlord, site["id"], trades=[trade], reference="J101", surface=120)
    assert unit["status"] == "unavailable" and unit["vacancy_id"] is None

    # Artisans register with leasing and save searches with notifications. Camille and Bois are
    # eligible (young businesses of the unit's trade); Vieux (15 years old, SARL) is not.
    camille = await api.register_artisan(
        [trade], legal_form="scop", labels=["esus", "fabrique_a_paris"], name="Camille"
    )
    bois = await api.register_artisan([trade], legal_form="sas", age_years=1, name="Bois")
    vieux = await api.register_artisan([trade], legal_form="sarl", age_years=15, name="Vieux")
    await wait_caught_up(bootstrap, "notifications", ["leasing.artisan.events"])
    criteria = {
        "arrondissements": [11],
        "site_kinds": ["hotel_industriel"],
        "trades": [trade],
        "max_rent_eur_m2_year": 150,
        "features": ["goods_lift"],
    }
    # Camille keeps the secret the platform generates; the others bring their own.
    s_camille = book.add(
        await api.subscribe(camille, criteria=criteria, receiver=receiver, own_secret=False),
        receiver,
    )
    s_bois = book.add(await api.subscribe(bois, criteria=criteria, receiver=receiver), receiver)
    book.add(await api.subscribe(vieux, criteria=criteria, receiver=receiver), receiver)
    eligible = [s_camille, s_bois]

    tap = await KafkaTap.open(
        bootstrap, UNIT_TOPIC, "leasing.application.events", "leasing.lease.events"
    )

    # One PATCH opens the vacancy; the alerts arrive on every channel of the eligible.
    opened = check(await api.set_status(landlord, unit["id"], "available"), 200)
    first_vacancy = opened["vacancy_id"]
    assert first_vacancy
    book.expect(first_vacancy, eligible)
    observed = await book.settle(timeout=90)
    assert book.expected <= observed.delivered, book.explain(observed)
    assert not observed.unverified, observed.unverified
    assert observed.delivered == book.expected, (
        f"an ineligible artisan was alerted: {book.explain(observed)}"
    )
    hit = next(h for h in receiver.hits_for([s_camille.path or ""]) if h.answered == 200)
    payload = hit.payload()
    assert payload["data"]["unit"]["unit_id"] == unit["id"]
    assert payload["data"]["why"]["eligibility"]["filtered"] is True
    mail = next(m for m in mailbox.to(s_camille.email or "") if m.delivery_id)
    assert "Atelier disponible" in mail.subject and "120 m²" in mail.subject
    assert mail.message["List-Unsubscribe"], "alert e-mails carry a one-click unsubscribe link"
    assert "lot J101" in mail.text()

    # Leasing learns of the vacancy from inventory's event; the artisans apply.
    async def leasing_has_vacancy() -> Any:
        listing = await api.leasing_unit(unit["id"])
        return listing if listing and listing["vacancy_id"] == first_vacancy else None

    await eventually(leasing_has_vacancy, timeout=60, what="leasing to list the vacancy")
    applications = {}
    for artisan in (camille, bois):
        applications[artisan.id] = check(
            await api.write(
                "POST", "leasing", "/v1/applications", artisan.token,
                json={"unit_id": unit["id"], "project": PROJECT},
                headers={"Idempotency-Key": f"apply-{artisan.id}"},
            ),
            201,
        )  # fmt: skip
    refused = await api.write(
        "POST", "leasing", "/v1/applications", vieux.token,
        json={"unit_id": unit["id"], "project": PROJECT},
    )  # fmt: skip
    assert refused.status_code == 422, refused.text
    failed_rules = {e.get("rule") for e in refused.json().get("errors", [])}
    assert "max_business_age_years" in failed_rules, refused.text

    # The landlord ranks them by the published grid and offers the lease to the best.
    ranking = check(
        await api.client.get(
            api.url("leasing", f"/v1/units/{unit['id']}/ranking"), headers=bearer(landlord)
        ),
        200,
    )
    ranked = [e["application_id"] for e in ranking["entries"]]
    scores = [e["score"] for e in ranking["entries"]]
    assert ranked == [applications[camille.id]["id"], applications[bois.id]["id"]], ranking
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1], scores
    # The call closes (its closing date moved a moment ahead); the ranking freezes.
    await close_call(api, landlord, applications[camille.id]["call_id"])
    start = today()
    lease = check(
        await api.write(
            "POST", "leasing", f"/v1/applications/{ranked[0]}/offer", landlord,
            json={"monthly_rent_eur": "1500.00", "start_date": start.isoformat(),
                  "end_date": months_later(start, 24).isoformat(),
                  "message": "Bienvenue à l'hôtel industriel"},
        ),
        201,
    )  # fmt: skip
    assert lease["status"] == "offered"

    # Camille is told by e-mail, and accepts.
    await eventually(
        lambda: _async([m for m in mailbox.to(camille.email) if "bail" in m.subject]),
        timeout=60,
        what="the lease-offer e-mail",
    )
    signed = check(
        await api.write("POST", "leasing", f"/v1/leases/{lease['id']}/accept", camille.token),
        200,
    )
    assert signed["status"] == "active"

    # Inventory shows the unit leased and the vacancy closed; Bois's application is closed.
    async def unit_is(status: str) -> Any:
        current = await api.unit(unit["id"])
        return current if current["status"] == status else None

    leased = await eventually(lambda: unit_is("leased"), timeout=60, what="the unit leased")
    assert leased["vacancy_id"] is None

    async def bois_closed() -> Any:
        current = check(
            await api.client.get(
                api.url("leasing", f"/v1/applications/{applications[bois.id]['id']}"),
                headers=bearer(bois.token),
            ),
            200,
        )
        return current if current["status"] == "closed" else None

    await eventually(bois_closed, timeout=60, what="the other application closed")

    # The lease ends: inventory reopens the unit with a new vacancy, and the alerts come back.
    ended = check(
        await api.write(
            "POST", "leasing", f"/v1/leases/{lease['id']}/end", landlord,
            json={"reason": "The cooperative moved to a larger workshop in Pantin"},
        ),
        200,
    )  # fmt: skip
    assert ended["status"] == "ended"
    reopened = await eventually(lambda: unit_is("available"), timeout=60, what="the unit reopened")
    second_vacancy = reopened["vacancy_id"]
    assert second_vacancy and second_vacancy != first_vacancy
    book.expect(second_vacancy, eligible)
    observed = await book.settle(timeout=90)

    # What went through Kafka for this journey.
    types: set[str] = set()
    ids: list[str] = []
    wanted_keys = {unit["id"], *(a["id"] for a in applications.values())}
    for record in await tap.read():
        if record.key and record.key.decode() in wanted_keys:
            headers = header_map(record)
            types.add(headers["ce_type"])
            ids.append(headers["ce_id"])
    counts.published = len(set(ids))
    counts.extra["kafka_duplicates"] = len(ids) - len(set(ids))
    api.count_into(counts)
    book.fill(counts, observed)
    counts.seconds = time.monotonic() - started
    report(counts)

    for needed in (
        "inventory.unit.vacancy_opened.v1",
        "inventory.unit.vacancy_closed.v1",
        "leasing.application.submitted.v1",
        "leasing.application.decided.v1",
        "leasing.lease.offered.v1",
        "leasing.lease.signed.v1",
        "leasing.lease.ended.v1",
    ):
        assert needed in types, f"{needed} not published: {sorted(types)}"
    assert counts.lost == 0, book.explain(observed)
    assert counts.distinct_duplicates == 0, book.explain(observed)
    assert counts.extra["unexpected_alerts"] == 0, book.explain(observed)
    assert not observed.unverified, observed.unverified
    assert counts.delivered == counts.expected == 12


async def _async(value: Any) -> Any:
    return value
