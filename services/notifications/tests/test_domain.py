"""Pure rules: matching and its explanation, the index terms, eligibility, retries, signatures,
the SSRF guard, e-mail rendering and unsubscribe tokens."""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, date, datetime

import pytest

from notifications.domain import (
    WILDCARD,
    ArtisanProfile,
    Criteria,
    ProgrammeRules,
    UnitFacts,
    eligibility,
    explain_match,
    full_years,
    index_terms,
    next_digest_at,
    probe_terms,
    retry_delay,
)
from notifications.mailer import email_of, read_unsubscribe_token, render, unsubscribe_token
from notifications.settings import NotificationsSettings
from notifications.webhooks import generate_secret, is_internal, secret_key, sign, verify

UNIT = UnitFacts(
    unit_id="u1",
    arrondissement=13,
    site_kind="hotel_industriel",
    surface_m2=180,
    rent_eur_m2_year=110,
    allowed_trades=("ceramics", "woodwork"),
    features=frozenset({"goods_lift", "step_free_access"}),
)


def test_a_unit_matches_a_search_and_says_why() -> None:
    criteria = Criteria(
        arrondissements=(12, 13),
        trades=("woodwork", "textile"),
        min_surface_m2=100,
        max_rent_eur_m2_year=120,
        features=("goods_lift",),
    )
    why = explain_match(criteria, UNIT)
    assert why == [
        "arrondissement 13 is one you follow",
        "allows your trade: woodwork",
        "180 m² within 100–∞ m²",
        "rent 110 €/m²/year ≤ your maximum 120",
        "has goods_lift",
    ]
    assert explain_match(Criteria(), UNIT) == ["your search accepts every vacancy"]


@pytest.mark.parametrize(
    "criteria",
    [
        Criteria(arrondissements=(11,)),
        Criteria(site_kinds=("pepiniere",)),
        Criteria(trades=("textile",)),
        Criteria(min_surface_m2=200),
        Criteria(max_surface_m2=150),
        Criteria(max_rent_eur_m2_year=100),
        Criteria(features=("extraction",)),
    ],
)
def test_each_criterion_can_rule_a_unit_out(criteria: Criteria) -> None:
    assert explain_match(criteria, UNIT) is None


def test_a_unit_naming_no_trade_is_open_to_every_trade() -> None:
    open_unit = UnitFacts("u2", 13, "hotel_industriel", 80, 90)
    assert explain_match(Criteria(trades=("textile",)), open_unit) == ["open to every trade"]
    assert "trade" not in probe_terms(open_unit)


def test_index_terms_agree_with_matching() -> None:
    """What the index finds (a term per dimension in the probe) is what explain_match accepts,
    for the dimensions the index covers."""
    rng = random.Random(7)
    kinds, trades = ["hotel_industriel", "pepiniere", "cite_artisanale"], ["wood", "clay", "silk"]
    for _ in range(2000):
        criteria = Criteria(
            arrondissements=tuple(rng.sample(range(1, 21), rng.randint(0, 3))),
            site_kinds=tuple(rng.sample(kinds, rng.randint(0, 2))),
            trades=tuple(rng.sample(trades, rng.randint(0, 2))),
        )
        unit = UnitFacts(
            "u", rng.randint(1, 20), rng.choice(kinds), 100, 100,
            tuple(rng.sample(trades, rng.randint(0, 2))),
        )  # fmt: skip
        terms = set(index_terms(criteria))
        found = all(
            any((dim, value) in terms for value in values)
            for dim, values in probe_terms(unit).items()
        )
        assert found == (explain_match(criteria, unit) is not None), (criteria, unit)
    assert ("arrondissement", WILDCARD) in index_terms(Criteria())


PROGRAMME = ProgrammeRules(
    programme_id="p1",
    name="Coopératives",
    site_kinds=("hotel_industriel",),
    max_business_age_years=5,
    allowed_legal_forms=("scop", "scic"),
    requires_trade_match=True,
    rent_cap_eur_m2_year=100,
)
ARTISAN = ArtisanProfile("a1", ("woodwork",), date(2022, 3, 1), "scop")
ON = date(2026, 1, 10)


def test_an_artisan_passing_a_programme_is_eligible_and_told_why() -> None:
    verdict = eligibility(ARTISAN, [PROGRAMME], UNIT, ON)
    assert verdict.eligible and verdict.filtered
    [qualified] = verdict.programmes
    assert qualified.programme_id == "p1"
    assert "legal form scop accepted" in qualified.reasons
    assert "business 3 full years old (under 5)" in qualified.reasons
    # The cap limits the lease's rent (leasing's rules), it does not exclude the unit.
    assert "lease rent capped at 100 €/m²/year" in qualified.reasons


@pytest.mark.parametrize(
    ("artisan", "unit"),
    [
        (ArtisanProfile("a", ("woodwork",), date(2021, 1, 10), "scop"), UNIT),  # 5 full years
        (ArtisanProfile("a", ("woodwork",), date(2022, 3, 1), "sarl"), UNIT),
        (ArtisanProfile("a", ("textile",), date(2022, 3, 1), "scop"), UNIT),
        (ArtisanProfile("a", ("woodwork",), None, "scop"), UNIT),
        (ARTISAN, UnitFacts("u", 13, "pepiniere", 100, 90, ("woodwork",))),
    ],
)
def test_each_rule_can_make_an_artisan_ineligible(artisan: ArtisanProfile, unit: UnitFacts) -> None:
    assert not eligibility(artisan, [PROGRAMME], unit, ON).eligible


def test_business_age_counts_whole_years_like_leasing() -> None:
    assert full_years(date(2021, 1, 11), ON) == 4
    assert full_years(date(2021, 1, 10), ON) == 5
    assert full_years(date(2024, 2, 29), date(2025, 2, 28)) == 0
    assert eligibility(
        ArtisanProfile("a", ("woodwork",), date(2021, 1, 11), "scop"), [PROGRAMME], UNIT, ON
    ).eligible


def test_no_programme_means_no_filter_and_an_unknown_artisan_is_not_alerted() -> None:
    assert eligibility(None, [], UNIT, ON).eligible
    assert not eligibility(None, [], UNIT, ON).filtered
    assert not eligibility(None, [PROGRAMME], UNIT, ON).eligible
    # programmes known but all retired: filtering stays on, and nobody qualifies
    assert not eligibility(ARTISAN, [], UNIT, ON, any_known=True).eligible


def test_retry_delays_grow_exponentially_with_jitter_and_a_cap() -> None:
    assert retry_delay(1, 2, 60, lambda: 0.0) == 1.0
    assert retry_delay(1, 2, 60, lambda: 1.0) == 2.0
    assert retry_delay(4, 2, 60, lambda: 1.0) == 16.0
    assert retry_delay(10, 2, 60, lambda: 1.0) == 60.0
    delays = {retry_delay(3, 2, 60) for _ in range(50)}
    assert len(delays) > 1 and all(4 <= d <= 8 for d in delays)


def test_digests_go_out_at_the_next_digest_hour() -> None:
    assert next_digest_at(datetime(2026, 1, 10, 6, 0, tzinfo=UTC), 7) == datetime(
        2026, 1, 10, 7, tzinfo=UTC
    )
    assert next_digest_at(datetime(2026, 1, 10, 7, 0, tzinfo=UTC), 7) == datetime(
        2026, 1, 11, 7, tzinfo=UTC
    )


def test_signatures_follow_standard_webhooks() -> None:
    # The reference vector of the Standard Webhooks specification's test suites.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    mine = generate_secret()
    assert len(secret_key(mine)) == 32
    now = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "d1",
        "webhook-timestamp": str(now),
        "webhook-signature": "v1,bogus " + sign(mine, "d1", now, b"{}"),
    }
    assert verify(mine, headers, b"{}") == {}
    with pytest.raises(ValueError, match="signature"):
        verify(generate_secret(), headers, b"{}")
    with pytest.raises(ValueError, match="signature"):
        verify(mine, headers, b"{ }")
    with pytest.raises(ValueError, match="timestamp"):
        verify(mine, {**headers, "webhook-timestamp": str(now - 3600)}, b"{}")
    with pytest.raises(ValueError, match="24 random bytes"):
        secret_key("whsec_c2hvcnQ=")


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("127.0.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),  # noqa: S104 - an address under test, not a bind
        ("224.0.0.251", True),
        ("::1", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("::ffff:10.0.0.1", True),
        ("ff02::1", True),
        ("1.1.1.1", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert is_internal(ipaddress.ip_address(address)) is internal


def test_unsubscribe_tokens_are_signed() -> None:
    settings = NotificationsSettings(environment="test")
    token = unsubscribe_token(settings, "sub-1")
    assert read_unsubscribe_token(settings, token) == "sub-1"
    assert read_unsubscribe_token(settings, token.replace("sub-1", "sub-2")) is None
    assert read_unsubscribe_token(settings, "sub-1.forged") is None
    other = NotificationsSettings(
        environment="test", unsubscribe_secret="another-secret-of-enough-length"
    )
    assert read_unsubscribe_token(other, token) is None


def test_emails_escape_what_they_show() -> None:
    unit = {
        "unit_id": "u", "site_id": "s", "landlord_id": "l", "landlord_name": "RIVP",
        "reference": "A", "floor": 0, "surface_m2": 50.0, "ceiling_height_m": None,
        "floor_load_kg_m2": None, "power_kva": None, "goods_lift": False, "loading_dock": False,
        "extraction": False, "step_free_access": False, "allowed_trades": [],
        "use_class": "production", "rent_eur_m2_year": 100.0, "charges_eur_m2_year": 0.0,
        "status": "available", "available_from": None, "site_name": "<script>x</script>",
        "site_kind": "hotel_industriel", "address": "1 rue", "postcode": "75013",
        "arrondissement": 13, "latitude": None, "longitude": None, "opens_for_visits": False,
        "version": 1,
    }  # fmt: skip
    payload = {
        "type": "vacancy.opened",
        "timestamp": "2026-01-05T10:00:00Z",
        "data": {
            "vacancy_id": "v",
            "opened_at": "2026-01-05T10:00:00Z",
            "unit": unit,
            "subscription": {"id": "sub-1", "name": "Atelier"},
            "why": {
                "criteria": ["a & b"],
                "eligibility": {"summary": "ok", "filtered": False, "programmes": []},
            },
        },
    }
    rendered = render(email_of(payload, "https://x.test/v1/unsubscribe/t"))
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "a &amp; b" in rendered.html and "a & b" in rendered.text
    assert "https://x.test/v1/unsubscribe/t" in rendered.text
