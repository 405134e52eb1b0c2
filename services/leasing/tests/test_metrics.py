"""Leasing's business metrics on its real /metrics: offers made out of rank, the decisions on
applications, and the time to let by arrondissement and site kind."""

from __future__ import annotations

from prometheus_client import REGISTRY

from .conftest import Api


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_offers_out_of_rank_decisions_and_time_to_let(api: Api) -> None:
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id, site_kind="hotel_industriel")
    # the SCOP with the label outranks the micro-entreprise without one, whatever the order
    _, second_token = await api.register(legal_form="micro_entreprise", labels=[])
    _, first_token = await api.register(legal_form="scop", labels=["fabrique_a_paris"])
    second = await api.apply(second_token, unit.unit_id)
    first = await api.apply(first_token, unit.unit_id)
    ranking = await api.client.get(f"/v1/units/{unit.unit_id}/ranking", headers=landlord)
    assert [e["application_id"] for e in ranking.json()["entries"]] == [first["id"], second["id"]]

    where = {"arrondissement": "13", "site_kind": "hotel_industriel"}
    before = {
        "out_of_rank": sample("leasing_offers_made_total", ranking="out_of_rank"),
        "first": sample("leasing_offers_made_total", ranking="first"),
        "offered": sample("leasing_decisions_total", decision="offered"),
        "declined": sample("leasing_decisions_total", decision="offer_declined"),
        "accepted": sample("leasing_decisions_total", decision="offer_accepted"),
        "signed": sample("leasing_vacancy_to_signed_lease_seconds_count", **where),
    }

    # the landlord offers to the second of the ranking: out of rank; the artisan declines
    ground = {"ground": "jury_decision", "explanation": "The jury preferred the second project."}
    r = await api.offer(landlord, second["id"], out_of_rank=ground)
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/v1/leases/{r.json()['id']}/decline", json={"reason": "Too far"}, headers=second_token
    )
    assert r.status_code == 200, r.text
    # the offer passes to the first in rank, who signs
    r = await api.client.get(f"/v1/applications/{first['id']}", headers=first_token)
    assert r.json()["status"] == "offered", r.text
    r = await api.client.post(f"/v1/leases/{r.json()['lease_id']}/accept", headers=first_token)
    assert r.status_code == 200, r.text

    after = {
        "out_of_rank": sample("leasing_offers_made_total", ranking="out_of_rank"),
        "first": sample("leasing_offers_made_total", ranking="first"),
        "offered": sample("leasing_decisions_total", decision="offered"),
        "declined": sample("leasing_decisions_total", decision="offer_declined"),
        "accepted": sample("leasing_decisions_total", decision="offer_accepted"),
        "signed": sample("leasing_vacancy_to_signed_lease_seconds_count", **where),
    }
    assert {k: after[k] - before[k] for k in before} == {
        "out_of_rank": 1,
        "first": 1,
        "offered": 2,
        "declined": 1,
        "accepted": 1,
        "signed": 1,
    }

    text = (await api.client.get("/metrics")).text
    assert 'leasing_offers_made_total{ranking="out_of_rank"}' in text
    assert 'leasing_decisions_total{decision="offer_expired"}' in text  # exists before the first
    assert (
        'leasing_vacancy_to_signed_lease_seconds_bucket{arrondissement="13",'
        'le="60.0",site_kind="hotel_industriel"}'
    ) in text
    assert 'http_requests_total{method="POST",route="/v1/applications/{application_id}/offer"' in (
        text
    )
    assert "_created" not in text


async def test_a_refused_offer_counts_nothing(api: Api) -> None:
    """An offer the service refuses (rent over the programme's cap) is no offer made."""
    landlord_id, landlord = api.landlord()
    unit = await api.vacant_unit(landlord_id)
    _, token = await api.register()
    app = await api.apply(token, unit.unit_id)
    before = sample("leasing_offers_made_total", ranking="first") + sample(
        "leasing_offers_made_total", ranking="out_of_rank"
    )
    r = await api.offer(landlord, app["id"], monthly_rent_eur=100000)
    assert r.status_code == 422, r.text
    after = sample("leasing_offers_made_total", ranking="first") + sample(
        "leasing_offers_made_total", ranking="out_of_rank"
    )
    assert after == before
