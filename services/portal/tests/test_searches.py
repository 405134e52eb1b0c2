"""The saved-search form read from a posted body, the API refusals mapped to their field, and
the words of statuses and the unread count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from portal.criteria import to_criteria
from portal.i18n import set_locale
from portal.pages.deliveries import delivery_status, search_status
from portal.pages.feed import unread_text
from portal.pages.searches import SearchForm, refusal_field
from portal.schemas import Subscription


@pytest.fixture(autouse=True)
def french_again() -> Iterator[None]:
    yield None
    set_locale("fr")


NOW = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


def test_a_complete_form_becomes_the_api_body() -> None:
    form = SearchForm.of_form(
        [
            ("name", " Bois, Est "), ("channel", "feed"), ("channel", "webhook"),
            ("webhook_url", "https://example.org/hooks/a"), ("frequency", "daily"),
            ("trade", "woodwork"), ("arrondissement", "20"), ("min_power_kva", "36"),
            ("sort", "-rent"), ("csrf_token", "x"),
        ]
    )  # fmt: skip
    assert form.errors == {}
    assert form.body(to_criteria(form.filters)) == {
        "name": "Bois, Est",
        "criteria": {"arrondissements": [20], "trades": ["woodwork"], "min_power_kva": 36},
        "channels": [{"type": "feed"}, {"type": "webhook", "url": "https://example.org/hooks/a"}],
        "frequency": "daily",
    }


def test_every_missing_or_bad_field_gets_its_message() -> None:
    set_locale("en")
    form = SearchForm.of_form(
        [("channel", "webhook"), ("webhook_url", "ftp://x"), ("min_power_kva", "3000")]
    )
    assert set(form.errors) == {"name", "webhook_url", "min_power_kva"}
    assert "https://" in form.errors["webhook_url"]
    assert set(SearchForm.of_form([("name", "n")]).errors) == {"channel"}
    email = SearchForm.of_form([("name", "n"), ("channel", "email"), ("email_address", "x@")])
    assert set(email.errors) == {"email_address"}
    long = SearchForm.of_form([("name", "n" * 121), ("channel", "feed")])
    assert set(long.errors) == {"name"}


def test_an_e_mail_channel_without_address_uses_the_profile() -> None:
    form = SearchForm.of_form([("name", "n"), ("channel", "email")])
    assert form.channels_json() == [{"type": "email"}]


def test_refusals_go_beside_their_field() -> None:
    assert refusal_field("Request validation failed: body.channels.0.webhook.url: bad") == (
        "webhook_url"
    )
    assert refusal_field("body.criteria.min_power_kva: too big") == "min_power_kva"
    assert refusal_field("body.criteria.max_surface_m2: too big") == "max_surface"
    assert refusal_field("body.criteria.trades.0: bad") == "trade"
    assert refusal_field("body.name: too long") == "name"
    assert refusal_field("This webhook URL resolves to a private address.") == "form"


def test_statuses_and_counts_in_words() -> None:
    set_locale("fr")
    sub = Subscription(
        id="s", name="n", status="disabled", disabled_reason="HTTP 410 Gone",
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    assert search_status(sub) == "Désactivée par la plateforme\xa0: HTTP 410 Gone"
    assert delivery_status("dead") == "Échec\xa0: plus aucune tentative"
    assert unread_text(0) == "Aucune alerte non lue"
    assert unread_text(1) == "1 alerte non lue"
    assert unread_text(3) == "3 alertes non lues"
