"""The personal-data export reads plain columns and builds its records in a worker thread:
the document must stay the one the ORM version built, byte for byte (apart from
`generated_at`). The ORM version is kept here, as it was, and both run on the same seeded
database (SQLite and PostgreSQL), directly and through `GET /v1/me/export`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from notifications import repository as repo
from notifications.models import (
    GUEST_OWNER_PREFIX,
    Artisan,
    Delivery,
    ErasedArtisan,
    Erasure,
    FeedItem,
    GuestConfirmation,
    GuestSubscriber,
    Subscription,
)
from notifications.service import privacy
from notifications.service.common import Sessions, now
from notifications.service.guests import normalise_email

from .conftest import Service, make_settings, running

# -- the ORM version, as it was before the export read plain columns ---------------------------


def _old_json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _old_row(obj: Any, *, hide: Sequence[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(obj).model_fields:
        value = getattr(obj, name)
        out[name] = privacy.NOT_EXPORTED if name in hide and value is not None else _old_json(value)
    return out


async def _old_owned(session: AsyncSession, model: Any, owner_column: Any, owner: str) -> list[Any]:
    return list((await session.execute(select(model).where(owner_column == owner))).scalars())


def _old_delivery_out(
    d: Delivery, subs: dict[str, Subscription], artisan: Artisan | None
) -> dict[str, Any]:
    out = _old_row(d)
    target: dict[str, Any] = {"channel": d.channel}
    sub = subs.get(d.subscription_id or "")
    if d.channel == "email":
        if sub is not None:
            target["email_address"] = sub.email_address
        elif artisan is not None:
            target["email_address"] = artisan.contact_email
    elif d.channel == "webhook" and sub is not None:
        target["webhook_url"] = sub.webhook_url
    out["target"] = target
    return out


async def old_export(sessions: Sessions, subject: str) -> dict[str, Any]:
    async with sessions() as session:
        subs = await _old_owned(session, Subscription, col(Subscription.artisan_id), subject)
        feed = await _old_owned(session, FeedItem, col(FeedItem.artisan_id), subject)
        deliveries = await _old_owned(session, Delivery, col(Delivery.artisan_id), subject)
        artisan = await repo.get_artisan(session, subject)
        erasures = await _old_owned(session, Erasure, col(Erasure.subject), subject)
        tombstone = await session.get(ErasedArtisan, subject)
        guest_records: list[dict[str, Any]] = []
        guest = None
        if artisan and artisan.contact_email_verified and artisan.contact_email:
            guest = await repo.get_guest_by_email(session, normalise_email(artisan.contact_email))
        if guest is not None:
            owner = GUEST_OWNER_PREFIX + guest.id
            g_subs = await _old_owned(session, Subscription, col(Subscription.artisan_id), owner)
            g_deliveries = await _old_owned(session, Delivery, col(Delivery.artisan_id), owner)
            confirmations = await _old_owned(
                session, GuestConfirmation, col(GuestConfirmation.guest_id), guest.id
            )
            by_id = {s.id: s for s in g_subs}
            guest_records.append(
                {
                    "subscriber": _old_row(guest),
                    "subscriptions": [_old_row(s, hide=("webhook_secret",)) for s in g_subs],
                    "confirmations": [_old_row(c, hide=("token_hash",)) for c in confirmations],
                    "deliveries": [_old_delivery_out(d, by_id, None) for d in g_deliveries],
                }
            )
    by_id = {s.id: s for s in subs}
    records: dict[str, list[Any]] = {
        "subscriptions": [_old_row(s, hide=("webhook_secret",)) for s in subs],
        "feed": [_old_row(f) for f in feed],
        "deliveries": [_old_delivery_out(d, by_id, artisan) for d in deliveries],
        "artisan_copy": [_old_row(artisan)] if artisan is not None else [],
        "guest_subscriptions": guest_records,
        "erasures": [_old_row(e) for e in erasures],
        "erased_artisan": [_old_row(tombstone)] if tombstone is not None else [],
    }
    return {
        "service": privacy.SERVICE,
        "subject": subject,
        "generated_at": now().isoformat(),
        "records": records,
    }


# -- a person with every kind of record, and their neighbours ----------------------------------


def _subscription(owner: str, k: int, at: datetime) -> Subscription:
    return Subscription(
        id=str(uuid.uuid4()),
        artisan_id=owner,
        name=f"Céramique « {k} » — 11ᵉ",
        status="active" if k % 3 else "paused",
        frequency="instant" if k % 2 else "daily",
        criteria={"arrondissements": [11, 20], "trades": ["ceramics"], "max_rent": 900.5},
        min_surface_m2=20.0 if k % 2 else None,
        max_rent_eur_m2_year=310.25 if k % 4 == 1 else None,
        feature_mask=k,
        webhook_url=f"https://hooks.example.org/{owner}/{k}" if k % 2 == 0 else None,
        webhook_secret="whsec-secret" if k % 2 == 0 else None,
        webhook_enabled=k % 2 == 0,
        email_address=f"alerts-{k}@example.org" if k != 3 else None,
        email_enabled=k != 3,
        feed_enabled=True,
        disabled_reason="Webhook en échec" if k == 4 else None,
        webhook_failing_since=at - timedelta(days=2) if k == 4 else None,
        language="en" if k == 1 else None,
        version=k + 1,
        created_at=at - timedelta(days=30 + k),
        updated_at=at - timedelta(days=k, microseconds=k),
    )


def _delivery(owner: str, i: int, sub_id: str | None, channel: str, at: datetime) -> Delivery:
    return Delivery(
        id=str(uuid.uuid4()),
        event_id=f"ev-{owner}-{i}",
        recipient_key=sub_id or owner,
        channel=channel,
        kind="vacancy_alert" if i % 4 else "call_result",
        artisan_id=owner,
        subscription_id=sub_id,
        vacancy_id=f"vac-{i}" if i % 5 else None,
        payload={"vacancy": {"id": f"vac-{i}", "surface_m2": 42.5, "label": "Atelier n°1 é"}},
        status=["delivered", "pending", "failed", "cancelled"][i % 4],
        digest=i % 7 == 0,
        batch_id=str(uuid.uuid4()) if i % 7 == 0 else None,
        attempts=i % 3,
        next_attempt_at=at - timedelta(hours=i),
        claimed_until=at + timedelta(seconds=30) if i % 9 == 0 else None,
        last_error=f"HTTP 500 at attempt {i}" if i % 4 == 2 else None,
        last_status_code=[250, None, 500, None][i % 4],
        occurred_at=at - timedelta(hours=i, minutes=1) if i % 6 else None,
        traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01" if i % 8 == 0 else None,
        created_at=at - timedelta(hours=i, microseconds=i),
        delivered_at=at - timedelta(hours=i) + timedelta(seconds=2) if i % 4 == 0 else None,
        cleared_at=at - timedelta(days=1) if i % 11 == 0 else None,
    )


async def seed(svc: Service, subject: str, *, artisan: bool, verified: bool) -> None:
    at = now()
    email = f"{subject}@Ateliers-Prives.fr"
    async with svc.app.state.runtime.sessions() as session, session.begin():
        for owner in (subject, f"other-{uuid.uuid4().hex[:8]}"):
            subs = [_subscription(owner, k, at) for k in range(6)]
            session.add_all(subs)
            channels = ["email", "webhook", "feed"]
            for i in range(60):
                # Some deliveries name no search, or one that is gone.
                sub_id = subs[i % 6].id if i % 10 else (None if i % 20 else str(uuid.uuid4()))
                d = _delivery(owner, i, sub_id, channels[i % 3], at)
                session.add(d)
                if d.channel == "feed":
                    session.add(
                        FeedItem(
                            artisan_id=owner,
                            delivery_id=d.id,
                            subscription_id=sub_id,
                            kind=d.kind,
                            title=f"Nouvel atelier vacant : U-{i:05d} « é »",
                            body={"vacancy": {"id": f"vac-{i}"}, "n": i, "ok": True, "x": None},
                            created_at=d.created_at,
                            read_at=at if i % 2 else None,
                        )
                    )
        if artisan:
            session.add(
                Artisan(
                    artisan_id=subject,
                    display_name="Zoé Lemaire",
                    business_name="Atelier Zoé" if verified else None,
                    trades=["ceramics", "wood"],
                    business_created_on=date(2019, 3, 14),
                    legal_form="EI",
                    labels=["Ateliers de Paris"],
                    contact_email=email,
                    contact_email_verified=verified,
                    version=3,
                    updated_at=at,
                )
            )
        session.add(
            Erasure(
                erasure_id=str(uuid.uuid4()),
                subject=subject,
                requested_by="self",
                source="api",
                erased_at=at - timedelta(days=3),
            )
        )
        if not artisan:
            session.add(
                ErasedArtisan(artisan_id=subject, erasure_id="er-1", erased_at=at - timedelta(1))
            )
        guest_id = str(uuid.uuid4())
        session.add(
            GuestSubscriber(
                id=guest_id,
                email=normalise_email(email),
                status="confirmed",
                language="fr",
                created_at=at - timedelta(days=9),
                confirmed_at=at - timedelta(days=8),
                updated_at=at - timedelta(days=8),
            )
        )
        await session.flush()
        owner = GUEST_OWNER_PREFIX + guest_id
        g_subs = [_subscription(owner, k, at) for k in range(3)]
        session.add_all(g_subs)
        for i in range(12):
            sub_id = g_subs[i % 3].id if i % 5 else None
            session.add(_delivery(owner, i, sub_id, ["email", "webhook"][i % 2], at))
        for k in range(2):
            session.add(
                GuestConfirmation(
                    token_hash=uuid.uuid4().hex * 2,
                    guest_id=guest_id,
                    name=f"Invité {k}",
                    criteria={"arrondissements": [13 + k]},
                    language="fr",
                    expires_at=at + timedelta(days=1),
                    used_at=at if k else None,
                    subscription_id=g_subs[k].id if k else None,
                    created_at=at - timedelta(hours=k),
                )
            )


def _same_moment(document: dict[str, Any]) -> bytes:
    return JSONResponse({**document, "generated_at": "-"}).body


@pytest.mark.parametrize(
    ("artisan", "verified"),
    [(True, True), (True, False), (False, False)],
    ids=["verified-account-with-guest-alerts", "unverified-address", "erased-copy"],
)
async def test_export_is_the_orm_document_byte_for_byte(
    database_url: str, artisan: bool, verified: bool
) -> None:
    # No delivery worker: it would send (and change) the pending deliveries between exports.
    async with running(make_settings(database_url, run_delivery_worker=False)) as svc:
        subject = f"art-{uuid.uuid4().hex[:8]}"
        await seed(svc, subject, artisan=artisan, verified=verified)
        sessions = svc.app.state.runtime.sessions

        old = await old_export(sessions, subject)
        new = await privacy.export(sessions, subject)

        records = new["records"]
        assert len(records["subscriptions"]) == 6
        assert len(records["deliveries"]) == 60
        assert len(records["feed"]) == 20
        assert len(records["erasures"]) == 1
        assert len(records["guest_subscriptions"]) == (1 if verified else 0)
        assert len(records["artisan_copy"]) == (1 if artisan else 0)
        assert len(records["erased_artisan"]) == (0 if artisan else 1)
        assert {s["webhook_secret"] for s in records["subscriptions"]} == {
            privacy.NOT_EXPORTED,
            None,
        }
        for kind, old_records in old["records"].items():
            assert new["records"][kind] == old_records, kind
        assert _same_moment(new) == _same_moment(old)

        # The endpoint's own bytes, as a client downloads them.
        r = await svc.client.get("/v1/me/export", headers=svc.artisan(subject))
        assert r.status_code == 200, r.text
        served = r.json()
        assert served["generated_at"] != "-"
        assert _same_moment(served) == _same_moment(old)
