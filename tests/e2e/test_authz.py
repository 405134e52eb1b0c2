"""The authorization matrix: every write endpoint of every service (read from the services' own
OpenAPI, so a new endpoint cannot be forgotten: an unclassified one fails this test) is tried

- with no token (401) and with tokens the platform's Keycloak did not issue for it — from
  another realm, expired, for another audience, ``alg=none``, with a tampered payload, and
  signed HS256 with the retired development secret — (401, each with its reason);
- with a valid token (real grants on the platform's Keycloak) of each role it does not allow,
  the city officer's among them: officers never write (403), except the programmes, the city's
  own policy, which officers and admins change;
- with the token of another owner of the right role: another landlord (403: units are public,
  so is who owns them) or another artisan (404: the existence of someone else's application,
  lease, search or feed item is not disclosed), as the services' READMEs say;

each time against a real resource its owner can see, with a body that would succeed, and each
time checking through the public APIs that nothing was written, and on Kafka that no event was
published because of it."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from fabkit.auth import Role
from fabkit.localstack.platform import Platform
from fabkit.oidc_testing import KeycloakAdmin, client_credentials_token

from .harness import (
    Api,
    Counts,
    KafkaTap,
    Mailbox,
    ReceiverHub,
    bearer,
    check,
    eventually,
    keycloak_of,
    luhn_siret,
    months_later,
    oidc_issuer,
    today,
    wait_caught_up,
)
from .scenario import PROJECT, World, close_call

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

WRITE_METHODS = {"post", "put", "patch", "delete"}
PROGRAMME = "ateliers-de-paris-incubator"
ALL_ROLES = ("admin", "officer", "landlord", "artisan")
# Public by design: the one-click unsubscribe link, whose signed token is the credential (a
# tampered one must be refused); a guest's request for e-mail alerts (anyone may ask: it only
# mails a confirmation link, and is rate-limited; a request without a body is refused) and its
# confirmation, whose single-use token is the credential (a made-up one must be refused); a
# workshop visit's booking (anyone may book with an address: it mails a confirmation, and is
# rate-limited; a request without a body is refused) and its cancellation, whose signed token
# is the credential (a request without one is refused).
PUBLIC = {
    ("notifications", "POST", "/v1/unsubscribe/{token}"),
    ("notifications", "POST", "/v1/guest-subscriptions"),
    ("notifications", "POST", "/v1/guest-subscriptions/confirm/{token}"),
    ("notifications", "POST", "/v1/visits/{slot_id}/bookings"),
    ("notifications", "POST", "/v1/visits/bookings/cancel"),
}
#: What the retired shared-secret tokens were signed with (HS256): refused everywhere now.
RETIRED_DEV_SECRET = "dev-only-insecure-secret-change-me-0000"


@dataclass(frozen=True)
class Rule:
    roles: tuple[str, ...]  # roles allowed to call it at all
    # Another owner of the right role, and the status that owner gets ("landlord" -> 403,
    # "artisan" -> 404); empty when the endpoint acts only on the caller's own things.
    other_owner: dict[str, int] = field(default_factory=dict)


RULES: dict[tuple[str, str, str], Rule] = {
    ("inventory", "POST", "/v1/landlords"): Rule(("admin",)),
    ("inventory", "POST", "/v1/sites"): Rule(("landlord", "admin"), {"landlord": 403}),
    ("inventory", "PATCH", "/v1/sites/{site_id}"): Rule(("landlord", "admin"), {"landlord": 403}),
    ("inventory", "POST", "/v1/sites/{site_id}/units"): Rule(
        ("landlord", "admin"), {"landlord": 403}
    ),
    ("inventory", "PATCH", "/v1/units/{unit_id}"): Rule(("landlord", "admin"), {"landlord": 403}),
    ("inventory", "POST", "/v1/sites/{site_id}/units/import"): Rule(
        ("landlord", "admin"), {"landlord": 403}
    ),
    # No net loss: officers and admins record development projects and deliveries of
    # compensations; roles are checked before the project or compensation is looked up.
    ("inventory", "POST", "/v1/projects"): Rule(("officer", "admin")),
    ("inventory", "PATCH", "/v1/projects/{project_id}"): Rule(("officer", "admin")),
    ("inventory", "POST", "/v1/surface/compensations/{compensation_id}/delivery"): Rule(
        ("officer", "admin")
    ),
    ("leasing", "POST", "/v1/artisans"): Rule(("artisan",)),
    ("leasing", "POST", "/v1/programmes"): Rule(("officer", "admin")),
    ("leasing", "PUT", "/v1/programmes/{programme_id}"): Rule(("officer", "admin")),
    ("leasing", "DELETE", "/v1/programmes/{programme_id}"): Rule(("officer", "admin")),
    ("leasing", "PATCH", "/v1/artisans/me"): Rule(("artisan",)),
    # Personal data: an artisan erases their own profile; an admin anyone's, on a written
    # request; notifications erases what it holds about whoever calls (any role).
    ("leasing", "DELETE", "/v1/me"): Rule(("artisan",)),
    ("leasing", "POST", "/v1/artisans/{artisan_id}/erasure"): Rule(("admin",)),
    ("notifications", "DELETE", "/v1/me"): Rule(("artisan", "landlord", "officer", "admin")),
    # Retention runs daily by itself; an admin may run it now. Open-data files likewise.
    ("leasing", "POST", "/v1/privacy/retention/run"): Rule(("admin",)),
    ("notifications", "POST", "/v1/privacy/retention/run"): Rule(("admin",)),
    ("inventory", "POST", "/v1/open-data/regenerate"): Rule(("admin",)),
    ("notifications", "POST", "/v1/open-data/regenerate"): Rule(("admin",)),
    ("leasing", "POST", "/v1/applications"): Rule(("artisan",)),
    ("leasing", "POST", "/v1/applications/{application_id}/withdraw"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    ("leasing", "POST", "/v1/applications/{application_id}/reject"): Rule(
        ("landlord", "admin"), {"landlord": 403}
    ),
    ("leasing", "POST", "/v1/applications/{application_id}/offer"): Rule(
        ("landlord", "admin"), {"landlord": 403}
    ),
    ("leasing", "POST", "/v1/leases/{lease_id}/accept"): Rule(("artisan",), {"artisan": 404}),
    ("leasing", "POST", "/v1/leases/{lease_id}/decline"): Rule(("artisan",), {"artisan": 404}),
    ("leasing", "POST", "/v1/leases/{lease_id}/end"): Rule(
        ("artisan", "landlord", "admin"), {"artisan": 404, "landlord": 403}
    ),
    ("leasing", "POST", "/v1/leases/{lease_id}/renew"): Rule(
        ("landlord", "admin"), {"landlord": 403}
    ),
    ("leasing", "PUT", "/v1/calls/{call_id}/jury"): Rule(("landlord", "admin"), {"landlord": 403}),
    ("leasing", "PATCH", "/v1/calls/{call_id}"): Rule(("landlord", "admin"), {"landlord": 403}),
    ("leasing", "POST", "/v1/calls/{call_id}/review"): Rule(
        ("landlord", "admin"), {"landlord": 403}
    ),
    ("leasing", "POST", "/v1/calls/{call_id}/decide"): Rule(
        ("landlord", "admin"), {"landlord": 403}
    ),
    ("leasing", "POST", "/v1/applications/{application_id}/submit"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    ("leasing", "POST", "/v1/calls/{call_id}/results"): Rule(
        ("landlord", "admin"), {"landlord": 403}
    ),
    ("leasing", "POST", "/v1/applications/{application_id}/appeal"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    # Answering is the city's: officers write here (and admins); roles are checked before the
    # appeal is looked up, so an appeal id nobody filed serves as the target.
    ("leasing", "POST", "/v1/appeals/{appeal_id}/answer"): Rule(("officer", "admin")),
    ("notifications", "POST", "/v1/subscriptions"): Rule(("artisan",)),
    ("notifications", "PATCH", "/v1/subscriptions/{subscription_id}"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    ("notifications", "DELETE", "/v1/subscriptions/{subscription_id}"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    ("notifications", "POST", "/v1/subscriptions/{subscription_id}/pause"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    ("notifications", "POST", "/v1/subscriptions/{subscription_id}/resume"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    ("notifications", "POST", "/v1/subscriptions/{subscription_id}/test"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    ("notifications", "POST", "/v1/feed/{item_id}/read"): Rule(("artisan",), {"artisan": 404}),
    ("notifications", "POST", "/v1/feed/{item_id}/unread"): Rule(("artisan",), {"artisan": 404}),
    ("notifications", "POST", "/v1/feed/read-all"): Rule(("artisan",)),
    ("notifications", "POST", "/v1/deliveries/{delivery_id}/redeliver"): Rule(
        ("artisan",), {"artisan": 404}
    ),
    ("notifications", "POST", "/v1/admin/deliveries/{delivery_id}/redeliver"): Rule(("admin",)),
    ("notifications", "POST", "/v1/admin/digests/flush"): Rule(("admin",)),
}


def write_endpoints(platform: Platform) -> set[tuple[str, str, str]]:
    found = set()
    for service, process in platform.services.items():
        spec = httpx.get(f"{process.url}/openapi.json", timeout=10).json()
        for path, operations in spec["paths"].items():
            for method in operations:
                if method in WRITE_METHODS:
                    found.add((service, method.upper(), path))
    return found


@dataclass
class Target:
    """A real resource of owner A for each endpoint, and a body that would succeed."""

    params: dict[str, str]
    body: dict[str, Any] | None
    owner_sees: tuple[str, str, str] | None = None  # (service, path, token) the owner can GET


class Fixture:
    """Landlords A and B, artisans A and B, and A's site, units, applications, leases,
    search, feed item and a delivery."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.tokens: dict[str, str] = {}

    async def build(self, platform: Platform, world: World, mailbox: Mailbox) -> None:
        api = self.api
        self.world = world
        self.landlord_a = world.landlord
        _, self.landlord_b = await api.new_landlord()
        self.landlord_a_id = (await api.unit(world.units[0]["id"]))["landlord_id"]
        self.artisan_a = world.subs[0].artisan
        self.artisan_b = await api.register_artisan(self.artisan_a.trades)
        self.sub_a = world.subs[0]
        self.site_a = world.units[0]["site_id"]
        units = [u["id"] for u in world.units]
        self.unit_a = units[0]
        # unit 0: an open vacancy with A's submitted application; unit 1: an offer to A;
        # unit 2: an active lease of A (under a renewable programme).
        vacancies = {}
        for uid in units[:3]:
            opened = await world.change(uid, "available")
            assert opened.vacancy_id
            vacancies[uid] = opened.vacancy_id
        await eventually(
            lambda: _all_listed(api, vacancies), timeout=60, what="leasing to list the vacancies"
        )
        self.application = check(
            await api.write(
                "POST", "leasing", "/v1/applications", self.artisan_a.token,
                json={"unit_id": units[0], "project": PROJECT},
            ),
            201,
        )["id"]  # fmt: skip
        applied = check(
            await api.write(
                "POST", "leasing", "/v1/applications", self.artisan_a.token,
                json={"unit_id": units[1], "project": PROJECT},
            ),
            201,
        )  # fmt: skip
        await close_call(api, self.landlord_a, applied["call_id"])
        start = today()
        self.offered_lease = check(
            await api.write(
                "POST", "leasing", f"/v1/applications/{applied['id']}/offer", self.landlord_a,
                json={"monthly_rent_eur": "800.00", "start_date": start.isoformat(),
                      "end_date": months_later(start, 12).isoformat()},
            ),
            201,
        )["id"]  # fmt: skip
        active = await _lease_under(api, self.landlord_a, units[2], self.artisan_a)
        self.active_lease = active["id"]
        # The call of A's application (unit 0): its jury, its results and A's appeal.
        self.call_a = check(
            await api.client.get(
                api.url("leasing", f"/v1/applications/{self.application}"),
                headers=bearer(self.artisan_a.token),
            ),
            200,
        )["call_id"]
        self.renew_to = months_later(start, 18).isoformat()
        # A feed item and a delivery of A's search (from the three vacancies).
        observed = await world.book.settle(timeout=60, quiet=0)
        assert world.book.expected <= observed.delivered, world.book.explain(observed)
        self.feed_item = str((await api.feed(self.artisan_a))[0]["id"])
        self.delivery = (await api.deliveries(self.sub_a.id))[0]["id"]
        mail = next(m for m in mailbox.to(self.sub_a.email or "") if m.message["List-Unsubscribe"])
        link = str(mail.message["List-Unsubscribe"]).strip("<>")
        token = link.rsplit("/", 1)[1]
        self.tampered_unsubscribe = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        await wait_caught_up(platform.broker.bootstrap, "notifications", ["leasing.artisan.events"])
        # A programme as GET answers it, changed so that a PUT by an officer would succeed.
        self.programme = check(
            await api.client.get(api.url("leasing", f"/v1/programmes/{PROGRAMME}")), 200
        )
        self.programme["rules"]["rent_cap_eur_m2_year"] -= 1

    def target(self, key: tuple[str, str, str]) -> Target:
        a_token = self.artisan_a.token
        today_ = today()
        site_body = {
            "name": "Intruder site", "kind": "hotel_industriel", "address": "1 rue Intruse",
            "postcode": "75019", "arrondissement": 19,
        }  # fmt: skip
        unit_body = {"reference": "X1", "surface_m2": 50, "rent_eur_m2_year": 90}
        targets = {
            ("inventory", "POST", "/v1/landlords"): Target({}, {"name": f"Intr {uuid.uuid4()}"}),
            ("leasing", "POST", "/v1/artisans"): Target(
                {},
                {
                    "display_name": "Intruder",
                    "business_name": "Intruder SARL",
                    "siret": luhn_siret(),
                    "trades": ["woodwork"],
                    "business_created_on": "2020-01-01",
                    "legal_form": "sarl",
                    "contact_email": "intruder@e2e.example.org",
                },
            ),
            ("inventory", "POST", "/v1/sites"): Target(
                {}, {**site_body, "landlord_id": self.landlord_a_id}
            ),
            ("inventory", "PATCH", "/v1/sites/{site_id}"): Target(
                {"site_id": self.site_a},
                {"name": "Hijacked site"},
                ("inventory", f"/v1/sites/{self.site_a}", ""),
            ),
            ("inventory", "POST", "/v1/sites/{site_id}/units"): Target(
                {"site_id": self.site_a}, unit_body, ("inventory", f"/v1/sites/{self.site_a}", "")
            ),
            ("inventory", "POST", "/v1/sites/{site_id}/units/import"): Target(
                {"site_id": self.site_a}, None, ("inventory", f"/v1/sites/{self.site_a}", "")
            ),
            ("inventory", "PATCH", "/v1/units/{unit_id}"): Target(
                {"unit_id": self.unit_a},
                {"rent_eur_m2_year": 1},
                ("inventory", f"/v1/units/{self.unit_a}", ""),
            ),
            ("inventory", "POST", "/v1/projects"): Target(
                {},
                {
                    "name": "Intruder project",
                    "arrondissement": 19,
                    "committed_m2": 10,
                    "delivery_on": months_later(today_, 12).isoformat(),
                },
            ),
            ("inventory", "PATCH", "/v1/projects/{project_id}"): Target(
                {"project_id": str(uuid.uuid4())}, {"committed_m2": 1}
            ),
            ("inventory", "POST", "/v1/surface/compensations/{compensation_id}/delivery"): Target(
                {"compensation_id": str(uuid.uuid4())}, {"unit_id": self.unit_a}
            ),
            ("leasing", "PATCH", "/v1/artisans/me"): Target({}, {"display_name": "Hijacked"}),
            ("leasing", "DELETE", "/v1/me"): Target({}, None),
            ("leasing", "POST", "/v1/artisans/{artisan_id}/erasure"): Target(
                {"artisan_id": self.artisan_a.id},
                {"request_reference": "DPO-INTRUDER-1", "note": "not a real request"},
                ("leasing", "/v1/artisans/me", a_token),
            ),
            ("notifications", "DELETE", "/v1/me"): Target({}, None),
            ("leasing", "POST", "/v1/privacy/retention/run"): Target({}, None),
            ("notifications", "POST", "/v1/privacy/retention/run"): Target({}, None),
            ("inventory", "POST", "/v1/open-data/regenerate"): Target({}, None),
            ("notifications", "POST", "/v1/open-data/regenerate"): Target({}, None),
            ("leasing", "POST", "/v1/programmes"): Target(
                {}, {**self.programme, "id": "intruder-programme", "max_points": None}
            ),
            ("leasing", "PUT", "/v1/programmes/{programme_id}"): Target(
                {"programme_id": PROGRAMME}, self.programme
            ),
            ("leasing", "DELETE", "/v1/programmes/{programme_id}"): Target(
                {"programme_id": PROGRAMME}, None
            ),
            ("leasing", "POST", "/v1/applications"): Target(
                {}, {"unit_id": self.world.units[3]["id"], "project": PROJECT}
            ),
            ("leasing", "PUT", "/v1/calls/{call_id}/jury"): Target(
                {"call_id": self.call_a},
                {
                    "members": [{"name": "Intruder", "organisation": "Nobody", "role": "chair"}],
                    "session_date": today_.isoformat(),
                    "minutes": "Minutes written by an intruder.",
                    "decision": "A decision written by an intruder.",
                },
            ),
            ("leasing", "POST", "/v1/calls/{call_id}/results"): Target(
                {"call_id": self.call_a}, None
            ),
            ("leasing", "POST", "/v1/applications/{application_id}/appeal"): Target(
                {"application_id": self.application},
                {"grounds": "An appeal written by someone else than the applicant."},
            ),
            ("leasing", "POST", "/v1/appeals/{appeal_id}/answer"): Target(
                {"appeal_id": str(uuid.uuid4())},
                {"outcome": "upheld", "answer": "An answer written by an intruder."},
            ),
            ("leasing", "PATCH", "/v1/calls/{call_id}"): Target(
                {"call_id": self.call_a},
                {"closes_at": months_later(today_, 2).isoformat() + "T12:00:00Z"},
                ("leasing", f"/v1/calls/{self.call_a}", ""),
            ),
            ("leasing", "POST", "/v1/calls/{call_id}/review"): Target(
                {"call_id": self.call_a}, None, ("leasing", f"/v1/calls/{self.call_a}", "")
            ),
            ("leasing", "POST", "/v1/calls/{call_id}/decide"): Target(
                {"call_id": self.call_a},
                {"outcome": "unawarded", "reason": "Decided by an intruder, not the landlord."},
                ("leasing", f"/v1/calls/{self.call_a}", ""),
            ),
            ("leasing", "POST", "/v1/applications/{application_id}/submit"): Target(
                {"application_id": self.application},
                None,
                ("leasing", f"/v1/applications/{self.application}", a_token),
            ),
            ("leasing", "POST", "/v1/applications/{application_id}/withdraw"): Target(
                {"application_id": self.application},
                {"reason": "Hijacked"},
                ("leasing", f"/v1/applications/{self.application}", a_token),
            ),
            ("leasing", "POST", "/v1/applications/{application_id}/reject"): Target(
                {"application_id": self.application},
                {"reason": "Not suitable for this unit"},
                ("leasing", f"/v1/applications/{self.application}", a_token),
            ),
            ("leasing", "POST", "/v1/applications/{application_id}/offer"): Target(
                {"application_id": self.application},
                {
                    "monthly_rent_eur": "700.00",
                    "start_date": today_.isoformat(),
                    "end_date": months_later(today_, 12).isoformat(),
                },
                ("leasing", f"/v1/applications/{self.application}", a_token),
            ),
            ("leasing", "POST", "/v1/leases/{lease_id}/accept"): Target(
                {"lease_id": self.offered_lease},
                None,
                ("leasing", f"/v1/leases/{self.offered_lease}", a_token),
            ),
            ("leasing", "POST", "/v1/leases/{lease_id}/decline"): Target(
                {"lease_id": self.offered_lease},
                {"reason": "Hijacked"},
                ("leasing", f"/v1/leases/{self.offered_lease}", a_token),
            ),
            ("leasing", "POST", "/v1/leases/{lease_id}/end"): Target(
                {"lease_id": self.active_lease},
                {"reason": "Hijacked"},
                ("leasing", f"/v1/leases/{self.active_lease}", a_token),
            ),
            ("leasing", "POST", "/v1/leases/{lease_id}/renew"): Target(
                {"lease_id": self.active_lease},
                {"end_date": self.renew_to},
                ("leasing", f"/v1/leases/{self.active_lease}", a_token),
            ),
            ("notifications", "POST", "/v1/subscriptions"): Target(
                {}, {"name": "Intruder", "channels": [{"type": "feed"}]}
            ),
            ("notifications", "POST", "/v1/feed/read-all"): Target({}, None),
            ("notifications", "POST", "/v1/deliveries/{delivery_id}/redeliver"): Target(
                {"delivery_id": self.delivery},
                None,
                ("notifications", f"/v1/subscriptions/{self.sub_a.id}/deliveries", a_token),
            ),
            ("notifications", "POST", "/v1/admin/deliveries/{delivery_id}/redeliver"): Target(
                {"delivery_id": self.delivery}, None
            ),
            ("notifications", "POST", "/v1/admin/digests/flush"): Target({}, None),
            ("notifications", "POST", "/v1/unsubscribe/{token}"): Target(
                {"token": self.tampered_unsubscribe}, None
            ),
            ("notifications", "POST", "/v1/guest-subscriptions"): Target({}, None),
            ("notifications", "POST", "/v1/guest-subscriptions/confirm/{token}"): Target(
                {"token": "made-up-" + uuid.uuid4().hex}, None
            ),
            ("notifications", "POST", "/v1/visits/{slot_id}/bookings"): Target(
                {"slot_id": "made-up-" + uuid.uuid4().hex}, None
            ),
            ("notifications", "POST", "/v1/visits/bookings/cancel"): Target({}, None),
        }
        sub_path = f"/v1/subscriptions/{self.sub_a.id}"
        for path, body in (
            ("/v1/subscriptions/{subscription_id}", {"name": "Hijacked"}),
            ("/v1/subscriptions/{subscription_id}/pause", None),
            ("/v1/subscriptions/{subscription_id}/resume", None),
            ("/v1/subscriptions/{subscription_id}/test", None),
        ):
            method = "PATCH" if path.endswith("}") else "POST"
            targets[("notifications", method, path)] = Target(
                {"subscription_id": self.sub_a.id}, body, ("notifications", sub_path, a_token)
            )
        targets[("notifications", "DELETE", "/v1/subscriptions/{subscription_id}")] = Target(
            {"subscription_id": self.sub_a.id}, None, ("notifications", sub_path, a_token)
        )
        for verb in ("read", "unread"):
            targets[("notifications", "POST", f"/v1/feed/{{item_id}}/{verb}")] = Target(
                {"item_id": self.feed_item}, None
            )
        return targets[key]

    def token_of(self, role: str, who: str = "a") -> str:
        if role == "admin":
            return self.api.admin
        if role == "officer":
            return self.api.identities.token(Role.OFFICER, "e2e-officer")
        if role == "landlord":
            return self.landlord_a if who == "a" else self.landlord_b
        return self.artisan_a.token if who == "a" else self.artisan_b.token

    async def state(self) -> dict[str, Any]:
        """Everything a refused write could have changed, through the public APIs."""
        api, admin = self.api, self.api.admin

        async def get(service: str, path: str, token: str | None = None, **params: Any) -> Any:
            return check(
                await api.client.get(api.url(service, path), params=params, headers=bearer(token)),
                200,
            )

        subs_a = await get("notifications", "/v1/subscriptions", self.artisan_a.token, limit=100)
        subs_b = await get("notifications", "/v1/subscriptions", self.artisan_b.token, limit=100)
        return {
            "programmes": await get("leasing", "/v1/programmes"),
            "landlords": sorted(x["id"] for x in await get("inventory", "/v1/landlords", admin)),
            "sites": (await get("inventory", "/v1/sites", limit=1))["total"],
            "site": await get("inventory", f"/v1/sites/{self.site_a}"),
            "units": [
                (u["id"], u["version"], u["status"], u["rent_eur_m2_year"])
                for u in (await get("inventory", "/v1/units", site_id=self.site_a, limit=100))[
                    "items"
                ]
            ],
            "artisans": [
                (await get("leasing", "/v1/artisans/me", t))["version"]
                for t in (self.artisan_a.token, self.artisan_b.token)
            ],
            "applications": [
                (x["id"], x["status"], len(x["decisions"]))
                for unit in self.world.units
                for x in (
                    await get("leasing", "/v1/applications", admin, unit_id=unit["id"], limit=100)
                )["items"]
            ],
            "calls": [
                (c["id"], c["status"], c["version"], c["closes_at"])
                for c in (
                    await get("leasing", "/v1/calls", landlord_id=self.landlord_a_id, limit=100)
                )["items"]
            ],
            "leases": [
                (x["id"], x["status"], x["end_date"])
                for unit in self.world.units
                for x in (await get("leasing", "/v1/leases", admin, unit_id=unit["id"], limit=100))[
                    "items"
                ]
            ],
            "subscriptions": [
                (s["id"], s["status"], s["version"], [c["enabled"] for c in s["channels"]])
                for s in subs_a["items"] + subs_b["items"]
            ],
            "feed": [(i["id"], i["read"]) for i in await api.feed(self.artisan_a)],
            "deliveries": (await get("notifications", "/v1/admin/deliveries", admin, limit=1))[
                "total"
            ],
            "delivery": [
                (d["id"], d["status"], d["attempts"]) for d in await api.deliveries(self.sub_a.id)
            ],
        }


async def _all_listed(api: Api, vacancies: dict[str, str]) -> bool:
    for unit_id, vacancy in vacancies.items():
        listing = await api.leasing_unit(unit_id)
        if not listing or listing["vacancy_id"] != vacancy:
            return False
    return True


async def _lease_under(api: Api, landlord: str, unit_id: str, artisan: Any) -> dict[str, Any]:
    """An active lease under the ESS programme (renewable once), so that renew can succeed."""
    application = check(
        await api.write(
            "POST", "leasing", "/v1/applications", artisan.token,
            json={"unit_id": unit_id, "project": PROJECT,
                  "programme_id": "economie-sociale-et-solidaire"},
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
    return check(  # type: ignore[no-any-return]
        await api.write("POST", "leasing", f"/v1/leases/{lease['id']}/accept", artisan.token), 200
    )


async def test_every_write_endpoint_refuses_the_wrong_callers(
    e2e_platform: Platform,
    api_for: Callable[[Platform], Api],
    mailbox_for: Callable[[Platform], Mailbox],
    receiver_hub: ReceiverHub,
    report: Callable[[Counts], None],
) -> None:
    platform = e2e_platform
    started = time.monotonic()
    endpoints = write_endpoints(platform)
    unclassified = endpoints - set(RULES) - PUBLIC
    assert not unclassified, f"write endpoints missing from the matrix: {unclassified}"
    assert not (set(RULES) | PUBLIC) - endpoints, "the matrix lists endpoints that no longer exist"

    api, mailbox = api_for(platform), mailbox_for(platform)
    # a real token of the platform's Keycloak that lives one second (used once expired)
    expired = await asyncio.to_thread(api.identities.short_lived_token, Role.ADMIN, 1)
    world = await World.build(
        platform, api, mailbox, [receiver_hub.make("ok")], units=4, prefix="authz"
    )
    fixture = Fixture(api)
    await fixture.build(platform, world, mailbox)
    bad_tokens = _bad_tokens(api, fixture, expired)
    # the expired token must be past its expiry and the verifiers' 30 s leeway
    expires = jwt.decode(expired, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires + 32 - time.time()))
    # Let the fixture's own events settle (the signed lease makes inventory publish) first.
    await wait_caught_up(platform.broker.bootstrap, "inventory", ["leasing.lease.events"])
    await wait_caught_up(platform.broker.bootstrap, "leasing", ["inventory.unit.events"])
    tap = await KafkaTap.open(
        platform.broker.bootstrap,
        "inventory.unit.events", "inventory.site.events", "inventory.surface.events",
        "leasing.artisan.events", "leasing.application.events", "leasing.lease.events",
        "leasing.programme.events",
    )  # fmt: skip

    attempts: list[tuple[str, str, str, str, int, int]] = []  # ..., caller, expected, got
    wrong: list[str] = []
    written: list[str] = []
    before = await fixture.state()
    for key in sorted(endpoints):
        service, method, template = key
        target = fixture.target(key)
        if target.owner_sees is not None:
            svc, path, token = target.owner_sees
            seen = await api.client.get(api.url(svc, path), headers=bearer(token or None))
            assert seen.status_code == 200, f"fixture for {key} not visible to its owner"
        path = template.format(**target.params)
        if key in PUBLIC:
            callers: list[tuple[str, str | None, tuple[int, ...], str]] = [
                ("tampered link", None, (400, 403, 404, 410, 422), "")
            ]
        else:
            rule = RULES[key]
            callers = [("no token", None, (401,), "bearer token is required")]
            callers += [(f"{what} token", t, (401,), why) for what, (t, why) in bad_tokens.items()]
            callers += [
                (f"{role} (wrong role)", fixture.token_of(role), (403,), "roles")
                for role in ALL_ROLES
                if role not in rule.roles
            ]
            callers += [
                (f"another {role}", fixture.token_of(role, "b"), (status,), "")
                for role, status in rule.other_owner.items()
            ]
        for caller, token, expected, reason in callers:
            response = await api.client.request(
                method, api.url(service, path), headers=bearer(token),
                json=target.body if target.body is not None else None,
            )  # fmt: skip
            attempts.append((service, method, template, caller, expected[0], response.status_code))
            try:
                detail = str(response.json().get("detail", ""))
            except ValueError:
                detail = response.text
            if response.status_code not in expected or reason not in detail:
                wrong.append(
                    f"{method} {service}{template} by {caller}: {response.status_code} "
                    f"(expected {expected}, saying {reason!r}) {response.text[:200]}"
                )
        # what any of these callers could have written, through the public APIs
        after = await fixture.state()
        if after != before:
            changed = sorted(k for k in before if before[k] != after[k])
            who = [c[0] for c in callers]
            written.append(f"{method} {service}{template} by {who} changed {changed}")
            before = after

    keys = {u["id"] for u in world.units} | {
        fixture.site_a, fixture.artisan_a.id, fixture.artisan_b.id, fixture.application,
        fixture.landlord_a_id, PROGRAMME, "intruder-programme",
    }  # fmt: skip
    leaked = [
        (r.topic, dict(r.headers).get("ce_type"))
        for r in await tap.read()
        if r.key is None or r.key.decode(errors="replace") in keys
    ]
    counts = Counts("authorization matrix", "sqlite")
    counts.sent = len(attempts)
    counts.acknowledged = sum(1 for a in attempts if 200 <= a[5] < 300)
    counts.published = len(leaked)
    counts.expected = len(attempts)
    counts.delivered = len(attempts) - len(wrong)  # refused as documented
    counts.lost = len(written)  # refused writes that changed something anyway
    counts.extra.update(
        endpoints=len(endpoints),
        public_endpoints=len(PUBLIC),
        status_mismatches=len(wrong),
        by_caller={c: sum(1 for a in attempts if a[3].startswith(c)) for c in
                   ("no token", *(f"{w} token" for w in bad_tokens), "admin", "officer",
                    "landlord", "artisan", "another")},
    )  # fmt: skip
    counts.seconds = time.monotonic() - started
    report(counts)

    assert not written, written
    assert not leaked, f"refused writes published events: {leaked[:5]}"
    assert not wrong, "\n".join(wrong)
    assert counts.acknowledged == 0


def _bad_tokens(api: Api, fixture: Fixture, expired: str) -> dict[str, tuple[str, str]]:
    """Tokens the services must refuse (401), each with what the answer must say."""
    valid = fixture.artisan_a.token
    header, _, signature = valid.split(".")
    claims = jwt.decode(valid, options={"verify_signature": False})
    raised = {**claims, "roles": [*claims.get("roles", []), "admin"]}
    forged_payload = base64.urlsafe_b64encode(json.dumps(raised).encode()).rstrip(b"=").decode()
    now = int(time.time())
    retired = jwt.encode(
        {"sub": fixture.artisan_a.id, "role": "admin", "iss": "fabrique", "iat": now,
         "exp": now + 600},
        RETIRED_DEV_SECRET,
        algorithm="HS256",
    )  # fmt: skip
    identities = api.identities
    return {
        "another realm's": (identities.master_realm_token(), "another issuer"),
        "expired": (expired, "expired at"),
        "wrong audience": (
            identities.short_lived_token(Role.ADMIN, 600, audience="some-other-api"),
            "not meant for this API",
        ),
        "alg=none": (jwt.encode(claims, None, algorithm="none"), "unsigned (alg none)"),
        "tampered": (f"{header}.{forged_payload}.{signature}", "altered"),
        "HS256 (retired secret)": (retired, "never a shared secret"),
    }


async def test_key_rotation_needs_no_service_restart(
    e2e_platform: Platform, api_for: Callable[[Platform], Api]
) -> None:
    """A new realm key with a higher priority: tokens signed by the old key still pass, tokens
    signed by the new one pass at once, on all three running services."""
    platform = e2e_platform
    server, issuer = keycloak_of(platform), oidc_issuer(platform)
    api = api_for(platform)
    reads = [  # an admin-only read on each service
        ("inventory", "/v1/landlords"),
        ("leasing", "/v1/applications"),
        ("notifications", "/v1/admin/deliveries"),
    ]
    secret = "dev-fabrique-cli-secret"
    old = (await client_credentials_token(issuer, "fabrique-cli", secret))["access_token"]

    async def accepted_everywhere(token: str) -> bool:
        for service, path in reads:
            r = await api.client.get(api.url(service, path), headers=bearer(token))
            if r.status_code != 200:
                return False
        return True

    assert await accepted_everywhere(old)
    admin = KeycloakAdmin(server.base_url, server.admin_user, server.admin_password)
    try:
        before = {k["kid"] for k in await admin.keys("fabrique")}
        await admin.add_rsa_key("fabrique", f"rotated-{uuid.uuid4().hex[:6]}", priority=500)
        new_kids = {k["kid"] for k in await admin.keys("fabrique")} - before
        assert len(new_kids) == 1, new_kids
    finally:
        await admin.aclose()
    new = (await client_credentials_token(issuer, "fabrique-cli", secret))["access_token"]
    assert jwt.get_unverified_header(new)["kid"] in new_kids
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]
    # A verifier refetches the JWKS for an unknown kid at most every 10 s: allow for that.
    await eventually(lambda: accepted_everywhere(new), timeout=30, what="the new key verified")
    assert await accepted_everywhere(old)
    for service in ("inventory", "leasing", "notifications"):
        proc = platform.services[service].proc
        assert proc is not None and proc.poll() is None, f"{service} restarted or died"


#: Reads that only some roles may make (everything else a service answers to a GET is public
#: or scoped to the caller's own records): (service, path) -> the roles allowed.
RESTRICTED_READS: dict[tuple[str, str], tuple[str, ...]] = {
    ("leasing", "/v1/stats/letting"): ("officer", "admin"),
    ("inventory", "/v1/surface/flags"): ("officer", "admin"),
}


async def test_restricted_reads_refuse_the_other_roles(
    e2e_platform: Platform, api_for: Callable[[Platform], Api]
) -> None:
    """Each restricted read answers its roles (200) and refuses the others (403, naming the
    roles allowed), a missing token (401) and a token signed by nobody the services trust."""
    api = api_for(e2e_platform)
    tokens = {
        role: await asyncio.to_thread(api.identities.token, Role(role), f"e2e-reader-{role}")
        for role in ALL_ROLES
    }
    wrong: list[str] = []
    for (service, path), allowed in sorted(RESTRICTED_READS.items()):
        url = api.url(service, path)
        answers = {"no token": await api.client.get(url)}
        for role, token in tokens.items():
            answers[role] = await api.client.get(url, headers=bearer(token))
        for caller, response in answers.items():
            expected = 200 if caller in allowed else 401 if caller == "no token" else 403
            if response.status_code != expected:
                wrong.append(f"GET {service}{path} by {caller}: {response.status_code}")
            elif expected == 403 and not all(r in response.json()["detail"] for r in allowed):
                wrong.append(f"GET {service}{path} by {caller}: {response.json()['detail']}")
    assert not wrong, "\n".join(wrong)
