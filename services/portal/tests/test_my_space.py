"""My space's pure parts: statuses, decisions and ranks in words, offers sorted from leases,
the project's checks; and its pages rendered from leasing-shaped answers (every branch a
template has), with what a person typed shown escaped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from portal.i18n import set_locale
from portal.pages.applications import WORDS, rank_text, status_text
from portal.pages.offers import lease_status_text, moment, split
from portal.pages.units import PROJECT_MAX, ApplyForm, Standing, check_project
from portal.rendering import ENV
from portal.schemas import (
    Application,
    Catalogue,
    Eligibility,
    Lease,
    Listing,
    Profile,
    SiteSummary,
    Unit,
)
from portal.sessions import SignedIn

NOW = datetime(2026, 12, 1, 17, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _french() -> None:
    set_locale("fr")


def test_ranks_read_as_people_say_them() -> None:
    assert rank_text(1, 7) == "1er sur 7"
    assert rank_text(3, 7) == "3e sur 7"
    assert rank_text(None, None) == ""
    set_locale("en")
    assert rank_text(3, 7) == "3rd of 7"
    assert rank_text(11, 12) == "11th of 12"


def test_statuses_in_words_and_unknown_ones_left_as_they_are() -> None:
    assert status_text("offered") == "Offre reçue\u00a0: répondez-y"
    assert status_text("someday") == "someday"
    assert lease_status_text("active") == "Signé\u00a0: bail en cours"


def test_offer_expiry_in_paris_time() -> None:
    assert moment(NOW) == "1 décembre 2026, 18:30"  # UTC+1 in winter


def test_offers_signed_and_past_leases_are_told_apart() -> None:
    leases = [lease(id=str(i), status=s) for i, s in enumerate(["offered", "active", "declined"])]
    offers, signed, past = split(leases)
    assert [x.status for x in offers + signed + past] == ["offered", "active", "declined"]


def test_the_project_is_checked_in_words() -> None:
    assert check_project("")
    assert "20" in (check_project("Trop court") or "")
    assert check_project("Grès pour les restaurants parisiens, deux fours.") is None
    assert str(PROJECT_MAX) in (check_project("x" * (PROJECT_MAX + 1)) or "").replace("\u202f", "")


# Pages rendered from answers shaped like leasing's -------------------------------------------

CRITERIA = [
    {
        "criterion_id": "young",
        "kind": "business_age",
        "label": "Young",
        "points": 30,
        "max_points": 30,
        "detail": "business 0 full years old",
    },
    {
        "criterion_id": "fabrique_a_paris",
        "kind": "label",
        "label": "Label",
        "points": 0,
        "max_points": 25,
        "detail": "holds none of the labels",
    },
]
PROGRAMME = {
    "id": "hij",
    "name": "Hôtels industriels — jeunes artisans",
    "site_kinds": ["hotel_industriel"],
    "rules": {
        "max_business_age_years": 5,
        "allowed_legal_forms": ["scop", "micro_entreprise"],
        "requires_trade_match": True,
        "rent_cap_eur_m2_year": 180,
        "max_residency_months": 36,
    },
    "scoring": [
        {"id": "young", "kind": "business_age", "label": "Young", "points": 30, "under_years": 1},
        {
            "id": "fabrique_a_paris",
            "kind": "label",
            "label": "Label",
            "points": 25,
            "labels": ["fabrique_a_paris"],
        },
    ],
    "max_points": 55,
}


def user() -> SignedIn:
    return SignedIn(
        sub="s1",
        name="Camille <b>Roux</b>",
        email="camille@example.org",
        email_verified=True,
        roles=frozenset({"artisan"}),
        access_token="t",
        csrf_token="csrf-1",
    )


def unit() -> Unit:
    return Unit(
        id="u1",
        site_id="s1",
        landlord_id="l1",
        reference="B12",
        floor=0,
        surface_m2=120,
        rent_eur_m2_year=150,
        charges_eur_m2_year=24,
        status="available",
        site=SiteSummary(
            id="s1",
            name="Berlier",
            kind="hotel_industriel",
            address="26 rue Bruneseau",
            postcode="75013",
            arrondissement=13,
        ),
    )


def profile() -> Profile:
    return Profile(
        id="s1",
        display_name="Atelier Roux",
        business_name="Roux Céramique",
        siret="73282932000074",
        trades=["ceramics"],
        business_created_on=date(2026, 3, 1),
        legal_form="sasu",
        labels=[],
        contact_email="camille@example.org",
        version=2,
    )


def application(**fields: Any) -> Application:
    base: dict[str, Any] = {
        "id": "a1",
        "unit_id": "u1",
        "vacancy_id": "v1",
        "programme_id": "hij",
        "project": "Grès <script>alert(1)</script> pour les restaurants",
        "status": "offered",
        "score": 30,
        "max_score": 55,
        "score_breakdown": CRITERIA,
        "submitted_at": NOW,
        "updated_at": NOW,
        "lease_id": "l1",
        "rank": 3,
        "ranked_among": 7,
        "decisions": [
            {
                "decision": "offered",
                "status_after": "offered",
                "actor_role": "landlord",
                "reason": "Visite <i>lundi</i>",
                "decided_at": NOW,
            }
        ],
    }
    return Application.model_validate({**base, **fields})


def lease(**fields: Any) -> Lease:
    base: dict[str, Any] = {
        "id": "l1",
        "unit_id": "u1",
        "application_id": "a1",
        "programme_id": "hij",
        "status": "offered",
        "monthly_rent_eur": 1450.5,
        "start_date": date(2027, 1, 1),
        "end_date": date(2029, 12, 31),
        "message": "Clés chez le <gardien>",
        "offered_at": NOW,
        "offer_expires_at": NOW,
    }
    return Lease.model_validate({**base, **fields})


def listing() -> Listing:
    return Listing(
        unit_id="u1",
        landlord_name="RIVP",
        site_name="Berlier",
        reference="B12",
        surface_m2=120,
        charges_eur_m2_year=24,
    )


def page(template: str, path: str, **context: Any) -> str:
    return ENV.get_template(template).render(
        request=None,
        lang="fr",
        path=path,
        query=[],
        tile_url=None,
        tile_attribution="",
        user=user(),
        csrf_token="csrf-1",
        **context,
    )


def eligibility(eligible: bool) -> Eligibility:
    failures = (
        []
        if eligible
        else [
            {
                "programme_id": "hij",
                "rule": "allowed_legal_forms",
                "message": "The legal form…",
                "required": ["micro_entreprise", "scop"],
                "actual": "sasu",
            },
            {
                "programme_id": "hij",
                "rule": "max_business_age_years",
                "message": "…",
                "required": 5,
                "actual": 7,
            },
        ]
    )
    return Eligibility.model_validate(
        {
            "unit_id": "u1",
            "vacancy_id": "v1",
            "open_for_applications": True,
            "evaluated_on": "2026-12-01",
            "programmes": [
                {
                    "programme_id": "hij",
                    "name": PROGRAMME["name"],
                    "eligible": eligible,
                    "failures": failures,
                    "score": 30,
                    "max_score": 55,
                    "criteria": CRITERIA,
                }
            ],
        }
    )


def unit_page(standing: Standing, form: ApplyForm | None = None) -> str:
    programmes = Catalogue.model_validate({"programmes": [PROGRAMME]}).programmes
    return page(
        "unit.html",
        "/units/u1",
        unit=unit(),
        listing=listing(),
        programmes=programmes,
        programmes_by_id={p.id: p for p in programmes},
        leasing_down=False,
        standing=standing,
        form=form or ApplyForm(key="k1"),
    )


def test_the_unit_page_tells_an_eligible_artisan_why_and_offers_the_form() -> None:
    html = unit_page(Standing(profile(), eligibility(True)))
    assert "Suis-je éligible\u00a0?" in html
    assert "Vous êtes éligible." in html
    assert "Votre entreprise a moins de 5 ans." in html
    assert "Mon total" in html and ">30<" in html and ">55<" in html
    assert 'action="/units/u1/apply"' in html
    assert 'name="csrf_token"' in html
    assert 'name="idempotency_key" value="k1"' in html


def test_the_unit_page_says_which_rules_fail_in_words() -> None:
    html = unit_page(Standing(profile(), eligibility(False)))
    assert "Vous n'êtes pas éligible." in html
    assert "La vôtre\u00a0: SASU" in html
    assert "elle a 7 années révolues" in html
    assert 'action="/units/u1/apply"' not in html


def test_the_unit_page_refusal_and_the_project_s_error_are_shown_escaped() -> None:
    form = ApplyForm(
        project="<script>x</script>",
        errors={"project": "Écrivez au moins 20 caractères"},
        refusal=[{"programme_id": "hij", "rule": "max_business_age_years", "actual": 7}],
    )
    html = unit_page(Standing(profile(), eligibility(True)), form)
    assert "Votre candidature n'a pas été acceptée" in html
    assert "&lt;script&gt;x&lt;/script&gt;</textarea>" in html
    assert 'aria-invalid="true"' in html


def test_the_unit_page_signed_out_or_without_profile_invites_to_go_on() -> None:
    signed_out = ENV.get_template("unit.html").render(
        request=None,
        lang="fr",
        path="/units/u1",
        query=[],
        tile_url=None,
        tile_attribution="",
        user=None,
        csrf_token="",
        unit=unit(),
        listing=None,
        programmes=[],
        programmes_by_id={},
        leasing_down=False,
        standing=Standing(),
        form=ApplyForm(),
    )
    assert "/login?next=/units/u1" in signed_out
    no_profile = unit_page(Standing())
    assert "/me/profile?next=/units/u1" in no_profile


def test_my_applications_show_status_points_rank_and_date() -> None:
    programmes = {"hij": Catalogue.model_validate({"programmes": [PROGRAMME]}).programmes[0]}
    html = page(
        "applications.html",
        "/me/applications",
        applications=[application()],
        total=1,
        page=1,
        pages=1,
        listings={"u1": listing()},
        programmes=programmes,
        **WORDS,
    )
    assert "Berlier — atelier B12" in html
    assert "Offre reçue\u00a0: répondez-y" in html
    assert "3e sur 7" in html and "30 sur 55" in html and "1 décembre 2026" in html


def test_an_application_shows_every_decision_escaped_and_the_withdrawal_step() -> None:
    programme = Catalogue.model_validate({"programmes": [PROGRAMME]}).programmes[0]
    context: dict[str, Any] = {
        "application": application(),
        "listing": listing(),
        "programme": programme,
        "confirm": False,
        "errors": {},
        "reason": "",
        "refused": None,
        "done": "applied",
        **WORDS,
    }
    html = page("applications_detail.html", "/me/applications/a1", **context)
    assert "Le bailleur vous a proposé un bail" in html
    assert "Visite &lt;i&gt;lundi&lt;/i&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="/me/applications/a1/withdraw"' in html
    confirm = page(
        "applications_detail.html", "/me/applications/a1", **{**context, "confirm": True}
    )
    assert 'action="/me/applications/a1/withdraw"' in confirm
    assert "Oui, retirer ma candidature" in confirm


def test_offers_show_rent_charges_start_expiry_and_both_answers() -> None:
    html = page(
        "offers.html",
        "/me/offers",
        offers=[lease()],
        signed=[lease(id="l2", status="active", signed_at=NOW)],
        past=[],
        errors={},
        reasons={},
        refused=None,
        done="",
        listings={"u1": listing()},
        programmes={},
        moment=moment,
        lease_status_text=lease_status_text,
    )
    assert "1\u202f450,50\xa0€ par mois, hors charges" in html
    assert "240,00\xa0€ par mois" in html  # 24 €/m²/year × 120 m² / 12
    assert "1 janvier 2027" in html and "1 décembre 2026, 18:30" in html
    assert 'href="/me/offers/l1/accept"' in html
    assert 'action="/me/offers/l1/decline"' in html
    assert "Clés chez le &lt;gardien&gt;" in html
    assert "Signé\u00a0: bail en cours" in html
    confirm = page(
        "offers_accept.html",
        "/me/offers/l1/accept",
        lease=lease(),
        listings={"u1": listing()},
        programmes={},
        moment=moment,
        lease_status_text=lease_status_text,
    )
    assert 'action="/me/offers/l1/accept"' in confirm and "Oui, j'accepte" in confirm


def test_the_profile_page_creates_edits_and_explains() -> None:
    common: dict[str, Any] = {
        "etag": '"2"',
        "errors": {},
        "refused": None,
        "is_artisan": True,
        "trades": ["ceramics"],
        "legal_forms": [("sasu", "SASU")],
        "label_codes": [("esus", "ESUS")],
        "next": "",
    }
    values = {
        "display_name": "<b>x</b>",
        "business_name": "",
        "siret": "",
        "trades": [],
        "business_created_on": "",
        "legal_form": "sasu",
        "labels": [],
        "contact_email": "",
    }
    created = page(
        "profile.html", "/me/profile", profile=None, values=values, notice=None, **common
    )
    assert "Créer mon profil" in created and "&lt;b&gt;x&lt;/b&gt;" in created
    stale = page(
        "profile.html",
        "/me/profile",
        profile=profile(),
        values=values,
        notice="stale",
        **{**common, "errors": {"siret": "Déjà pris"}},
    )
    assert "modifié entre-temps (dans un autre onglet\u00a0?)" in stale
    assert 'name="etag" value="&#34;2&#34;"' in stale
    assert 'href="#f-siret"' in stale


# Signed out: every page of my space asks for a login, every form refuses a POST ----------------


async def test_my_space_asks_for_a_login_and_its_forms_refuse_a_post_without_a_session(
    tmp_path: Any,
) -> None:
    import asyncio

    import httpx

    from fabkit.localstack.ports import free_port
    from portal.cli import migrate
    from portal.main import create_app
    from portal.settings import PortalSettings

    down = f"http://127.0.0.1:{free_port()}"
    database = f"sqlite+aiosqlite:///{tmp_path}/portal.db"
    await asyncio.to_thread(migrate, database)
    config = PortalSettings(
        inventory_url=down, leasing_url=down, notifications_url=down, environment="test",
        database_url=database,
    )  # fmt: skip
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
            for path in ("/me/profile", "/me/applications", "/me/applications/a1", "/me/offers",
                         "/me/offers/l1/accept", "/me/applications/a1/withdraw"):  # fmt: skip
                answer = await client.get(path)
                assert answer.status_code == 303, path
                assert answer.headers["location"].startswith("/login?next=/me/"), path
            for path in ("/me/profile", "/units/u1/apply", "/me/offers/l1/accept",
                         "/me/offers/l1/decline", "/me/applications/a1/withdraw"):  # fmt: skip
                answer = await client.post(path, data={"project": "x" * 30})
                # Signed out, nothing is sent to leasing: the login comes first.
                assert answer.status_code == 303, (path, answer.status_code)
                assert answer.headers["location"].startswith("/login?next="), path
