"""A call's results and an appeal end to end on real processes, through the public APIs: a call
closed by leasing's clock (its clock file) and decided by a signed lease after a rejection on a
published ground; its jury recorded; its anonymised results published (the ground in the table,
no name, SIRET or project anywhere in it); an appeal filed within the period and answered by a
city officer, the appellant told by e-mail and in the feed; an appeal refused once the clock
passes the period."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform

from .conftest import database_of
from .harness import (
    Api,
    Counts,
    Mailbox,
    check,
    eventually,
    months_later,
    tag,
    today,
)
from .scenario import PROJECT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DAY = 24 * 3600
REJECTION = {"reason": "The kilns need 60 kVA; the unit has 36.", "ground": "technical_unfit"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_results_published_and_an_appeal_answered(
    clock_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    clock_file: Path,
    report: Callable[[Counts], None],
) -> None:
    platform, started = clock_platform, time.monotonic()
    api, mailbox = api_for(platform), mailbox_for(platform)
    counts = Counts("call results", database_of(platform))
    clock_file.write_text("0")
    trade = tag("results")
    _, landlord = await api.new_landlord()
    officer = await api_token(api, Role.OFFICER)
    site = await api.new_site(landlord, kind="hotel_industriel", arrondissement=20)
    unit = await api.new_unit(landlord, site["id"], trades=[trade], surface=90)
    opened = check(await api.set_status(landlord, unit["id"], "available"), 200)

    async def the_call() -> Any:
        r = await api.client.get(api.url("leasing", "/v1/calls"), params={"unit_id": unit["id"]})
        items = check(r, 200)["items"]
        return items[0] if items and items[0]["vacancy_id"] == opened["vacancy_id"] else None

    call = await eventually(the_call, timeout=60, what="leasing to open the call")
    people = [
        await api.register_artisan([trade], legal_form="scop", labels=["esus"], name="Aïcha"),
        await api.register_artisan([trade], legal_form="sas", name="Bruno"),
    ]
    apps = [
        check(
            await api.write(
                "POST", "leasing", "/v1/applications", a.token,
                json={"unit_id": unit["id"], "project": PROJECT},
            ),
            201,
        )
        for a in people
    ]  # fmt: skip

    # leasing's clock passes the closing date: the worker closes the call, freezing the ranking
    clock_file.write_text(str(22 * DAY))
    call_url = api.url("leasing", f"/v1/calls/{call['id']}")

    async def status_is(wanted: str) -> Any:
        found = check(await api.client.get(call_url), 200)
        return found if found["status"] == wanted else None

    await eventually(lambda: status_is("closed"), timeout=30, what="the call to close")
    # the first is rejected on a published ground; the second is offered and signs
    check(
        await api.write(
            "POST", "leasing", f"/v1/applications/{apps[0]['id']}/reject", landlord,
            json=REJECTION,
        ),
        200,
    )  # fmt: skip
    start = today() + timedelta(days=23)
    terms = {
        "monthly_rent_eur": "700.00",
        "start_date": start.isoformat(),
        "end_date": months_later(start, 12).isoformat(),
    }
    lease = check(
        await api.write(
            "POST", "leasing", f"/v1/applications/{apps[1]['id']}/offer", landlord, json=terms
        ),
        201,
    )
    check(
        await api.write("POST", "leasing", f"/v1/leases/{lease['id']}/accept", people[1].token),
        200,
    )
    await eventually(lambda: status_is("decided"), timeout=30, what="the call to be decided")

    # the jury, then the results
    jury = {
        "members": [
            {"name": "Claire Martin", "organisation": "Ville de Paris, DAE", "role": "chair"},
            {
                "name": "Paul Durand", "organisation": "Ateliers de Paris", "role": "member",
                "conflict_of_interest": True, "declaration": "Mentored Aïcha in 2025.",
            },
        ],
        "session_date": today().isoformat(),
        "minutes": "The jury read the ranking and the two projects.",
        "decision": "The jury follows the ranking once the power need is taken into account.",
    }  # fmt: skip
    check(
        await api.write("PUT", "leasing", f"/v1/calls/{call['id']}/jury", landlord, json=jury),
        200,
    )
    published = check(
        await api.write("POST", "leasing", f"/v1/calls/{call['id']}/results", landlord), 200
    )
    assert published["status"] == "results_published" and published["outcome"] == "leased"

    results = check(
        await api.client.get(api.url("leasing", f"/v1/calls/{call['id']}/results")), 200
    )
    assert [(r["candidate"], r["outcome"]) for r in results["rows"]] == [
        ("Candidate 1", "rejected"),
        ("Candidate 2", "leased"),
    ]
    departure = results["rows"][0]["departures"][0]
    assert (departure["ground"], departure["explanation"]) == (
        "technical_unfit",
        REJECTION["reason"],
    )
    assert [m["recused"] for m in results["jury"]["members"]] == [False, True]
    text = json.dumps(results, ensure_ascii=False)
    for secret in ("Aïcha", "Bruno", PROJECT, *(a.id for a in people), *(a["id"] for a in apps)):
        assert secret not in text, secret
    for app in apps:
        profile = check(
            await api.client.get(
                api.url("leasing", f"/v1/artisans/{app['artisan_id']}"), headers=_auth(officer)
            ),
            200,
        )
        assert profile["siret"] not in text and profile["business_name"] not in text

    # every applicant is told their rank by e-mail
    for i, artisan in enumerate(people):
        mail = await eventually(
            lambda a=artisan: _mail_with(mailbox, a.email, "Votre rang"),
            timeout=60,
            what="the results e-mail",
        )
        assert f"Votre rang : {i + 1} sur 2" in mail

    # Bruno appeals within the period; an officer answers; Bruno is told
    appeal = check(
        await api.write(
            "POST", "leasing", f"/v1/applications/{apps[1]['id']}/appeal", people[1].token,
            json={"grounds": "I ask the jury to publish how the power need was weighed."},
        ),
        201,
    )  # fmt: skip
    answer = {"outcome": "dismissed", "answer": "The power need is a published ground: see row 1."}
    r = await api.write(
        "POST", "leasing", f"/v1/appeals/{appeal['id']}/answer", landlord, json=answer
    )
    assert r.status_code == 403, r.text
    answered = check(
        await api.write(
            "POST", "leasing", f"/v1/appeals/{appeal['id']}/answer", officer, json=answer
        ),
        200,
    )
    assert answered["status"] == "answered"
    mail = await eventually(
        lambda: _mail_with(mailbox, people[1].email, answer["answer"]),
        timeout=60,
        what="the answer by e-mail",
    )
    assert "rejeté" in mail
    feed = await eventually(
        lambda: _feed_kinds(api, people[1], "appeal_answered"), timeout=30, what="the feed"
    )
    assert feed
    listed = check(
        await api.client.get(
            api.url("leasing", "/v1/appeals"),
            params={"call_id": call["id"]},
            headers=_auth(officer),
        ),
        200,
    )
    assert [a["id"] for a in listed["items"]] == [appeal["id"]]

    # once leasing's clock passes the appeal period, Aïcha's appeal is refused
    clock_file.write_text(str((22 + 61) * DAY))
    r = await api.write(
        "POST", "leasing", f"/v1/applications/{apps[0]['id']}/appeal", people[0].token,
        json={"grounds": "My kilns can run on 36 kVA with a soft starter."},
    )  # fmt: skip
    assert r.status_code == 409 and "ended at" in r.json()["detail"], r.text
    clock_file.write_text("0")
    counts.extra.update(appeals=1, answered=1, refused_late=1, applicants_told=len(people))
    counts.seconds = time.monotonic() - started
    report(counts)


async def api_token(api: Api, role: Role) -> str:
    return await asyncio.to_thread(api.identities.token, role, f"e2e-results-{role.value}")


async def _mail_with(mailbox: Mailbox, address: str, needle: str) -> str | None:
    for mail in mailbox.to(address):
        text = mail.text()
        if needle in text:
            return text
    return None


async def _feed_kinds(api: Api, artisan: Any, kind: str) -> bool:
    return any(item["kind"] == kind for item in await api.feed(artisan))
