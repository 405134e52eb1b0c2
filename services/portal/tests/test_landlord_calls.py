"""The landlord's offer and rejection form (pure): an offer that skips someone ranked higher
needs a published ground and an explanation, a rejection always a ground and a reason."""

from __future__ import annotations

from starlette.datastructures import FormData

from portal.i18n import set_locale
from portal.pages.landlord_calls import read_decision, read_jury
from portal.schemas import LandlordRankingLine

FIRST = LandlordRankingLine(
    rank=1, application_id="app-1", status="submitted", in_the_running=True, score=10,
    max_score=20,
)  # fmt: skip
TERMS = {"rent": "1 250,50", "start_date": "2027-01-01", "end_date": "2029-12-31"}


def test_an_offer_to_the_first_in_the_running_needs_only_its_terms() -> None:
    form, body = read_decision(FormData({**TERMS, "application_id": "app-1"}), FIRST)
    assert form.errors == {}
    assert body == {
        "message": None,
        "monthly_rent_eur": "1250.50",
        "start_date": "2027-01-01",
        "end_date": "2029-12-31",
    }


def test_skipping_the_first_needs_a_ground_and_an_explanation() -> None:
    set_locale("fr")
    form, _ = read_decision(FormData({**TERMS, "application_id": "app-2"}), FIRST)
    assert set(form.errors) == {"ground", "explanation"}
    assert form.errors["ground"].startswith("Ce candidat n’est pas le premier en lice")
    sent = {**TERMS, "application_id": "app-2", "ground": "technical_unfit",
            "explanation": "The first project needs 60 kVA; the unit has 36."}  # fmt: skip
    form, body = read_decision(FormData(sent), FIRST)
    assert form.errors == {}
    assert body["out_of_rank"] == {
        "ground": "technical_unfit",
        "explanation": "The first project needs 60 kVA; the unit has 36.",
    }


def test_bad_terms_and_a_rejection_without_ground_are_named_beside_their_fields() -> None:
    set_locale("fr")
    bad = {"application_id": "app-1", "rent": "0", "start_date": "2027-02-01",
           "end_date": "2027-01-01"}  # fmt: skip
    form, _ = read_decision(FormData(bad), FIRST)
    assert form.errors == {
        "rent": "Écrivez le loyer mensuel en euros, par exemple 1250 ou 1250,50.",
        "end_date": "La fin doit venir après le début.",
    }
    form, body = read_decision(
        FormData({"action": "reject", "reject_application_id": "app-2", "reason": "non"}), FIRST
    )
    assert set(form.errors) == {"reject_ground", "reason"}
    form, body = read_decision(
        FormData({"action": "reject", "reject_application_id": "app-2",
                  "reject_ground": "technical_unfit", "reason": "The kilns need 60 kVA."}),
        FIRST,
    )  # fmt: skip
    assert form.errors == {} and body == {
        "reason": "The kilns need 60 kVA.",
        "ground": "technical_unfit",
    }


def test_the_jury_form_needs_a_member_a_date_and_a_declaration_for_a_conflict() -> None:
    set_locale("fr")
    form, _ = read_jury(FormData({"session_date": "03/02/2027", "minutes": "", "decision": ""}))
    assert set(form.errors) == {"member-0-name", "session_date", "minutes", "decision"}
    sent = {
        "member-0-name": "Claire Martin", "member-0-organisation": "Ville de Paris, DAE",
        "member-0-role": "présidente",
        "member-1-name": "Paul Durand", "member-1-organisation": "Ateliers de Paris",
        "member-1-role": "membre", "member-1-conflict": "yes",
        "session_date": "2027-02-03", "minutes": "The jury read the ranking.",
        "decision": "The jury follows the ranking.",
    }  # fmt: skip
    form, _ = read_jury(FormData(sent))
    assert form.errors == {
        "member-1-declaration": "Dites quel est le conflit d’intérêts : le membre est alors "
        "écarté de cet appel."
    }
    form, body = read_jury(FormData({**sent, "member-1-declaration": "Mentored one applicant."}))
    assert form.errors == {}
    assert [m["conflict_of_interest"] for m in body["members"]] == [False, True]
    assert body["members"][1]["declaration"] == "Mentored one applicant."
    assert body["session_date"] == "2027-02-03"
