"""Never two offered-or-active leases on one unit: 50 concurrent offers, then 50 concurrent
acceptances, end with exactly one lease; the database itself refuses a second open lease."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from leasing.models import Lease

from .conftest import Api

N = 50


async def leases_of(api: Api, unit_id: str) -> list[Lease]:
    async with api.sessions() as session:
        rows = await session.execute(select(Lease).where(Lease.unit_id == unit_id))
        return list(rows.scalars().all())


async def test_fifty_concurrent_offers_then_acceptances_make_exactly_one_lease(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    applicants = []
    for _ in range(N):
        _, token = await api.register()
        applicants.append((token, await api.apply(token, unit.unit_id)))

    # The call closes; every offer but the one to the first in rank gives a published ground.
    await api.close_call(applicants[0][1]["call_id"])
    ground = {"ground": "jury_decision", "explanation": "The jury chose this project in session."}
    offers = await asyncio.gather(
        *(
            api.offer(landlord, app["id"], **({"out_of_rank": ground} if i else {}))
            for i, (_, app) in enumerate(applicants)
        )
    )

    statuses = Counter(r.status_code for r in offers)
    assert statuses == {201: 1, 409: N - 1}, [r.text for r in offers if r.status_code >= 500]
    assert all("offered or signed" in r.text for r in offers if r.status_code == 409)
    leases = await leases_of(api, unit.unit_id)
    assert [lease.status for lease in leases] == ["offered"]
    winner = next(i for i, r in enumerate(offers) if r.status_code == 201)
    token, app = applicants[winner]
    lease_id = offers[winner].json()["id"]

    accepts = await asyncio.gather(
        *(api.client.post(f"/v1/leases/{lease_id}/accept", headers=token) for _ in range(N))
    )

    assert Counter(r.status_code for r in accepts) == {200: 1, 409: N - 1}
    leases = await leases_of(api, unit.unit_id)
    assert [(lease.id, lease.status) for lease in leases] == [(lease_id, "active")]
    events = [e.event_type for e in await api.outbox(key=unit.unit_id)]
    assert events.count("leasing.lease.offered.v1") == 1
    assert events.count("leasing.lease.signed.v1") == 1
    r = await api.client.get(f"/v1/applications/{app['id']}", headers=token)
    assert [d["decision"] for d in r.json()["decisions"]] == ["offered", "offer_accepted"]


async def test_the_database_refuses_a_second_open_lease(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    app = await api.apply(token, unit.unit_id)
    _, other_token = await api.register()
    other_app = await api.apply(other_token, unit.unit_id)
    assert (await api.offer(landlord, app["id"])).status_code == 201
    (offered,) = await leases_of(api, unit.unit_id)
    now = datetime.now(UTC)

    def twin(status: str) -> Lease:
        return Lease(
            id=str(uuid.uuid4()),
            unit_id=offered.unit_id,
            vacancy_id=offered.vacancy_id,
            # the application id is unique per lease; a raw insert borrows another one
            application_id=offered.application_id,
            artisan_id=offered.artisan_id,
            landlord_id=offered.landlord_id,
            programme_id=offered.programme_id,
            status=status,
            monthly_rent_cents=1,
            start_date=offered.start_date,
            end_date=offered.start_date + timedelta(days=30),
            offered_by="test",
            offered_at=now,
            offer_expires_at=now,
            updated_at=now,
        )

    for status in ("offered", "active"):
        lease = twin(status)
        lease.application_id = other_app["id"]
        with pytest.raises(IntegrityError):
            async with api.sessions() as session, session.begin():
                session.add(lease)
    # a closed lease of the same unit is fine
    closed = twin("declined")
    closed.application_id = other_app["id"]
    async with api.sessions() as session, session.begin():
        session.add(closed)
    assert sorted(x.status for x in await leases_of(api, unit.unit_id)) == ["declined", "offered"]
