"""The e-mail an artisan gets when a saved search is switched off because its webhook failed
every attempt for days (docs/reliability.md): why, since when, and how to resume. French or
English, the search's language; plain text and HTML, every value escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any, Literal

from notifications.contracts import SubscriptionRef, WebhookDisabledEmail
from notifications.domain import duration_words
from notifications.mailer import Rendered

_TEXT = {
    "fr": {
        "subject": "Alertes suspendues : votre webhook ne répond plus (« {name} »)",
        "why": "Votre recherche « {name} » est suspendue : depuis le {since} (UTC), aucun des "
        "envois vers votre webhook ({host}) n'a abouti, et cela dure depuis plus de {days}.",
        "last": "Dernière erreur : {error}.",
        "nothing": "Tant qu'elle est suspendue, cette recherche ne vous envoie plus rien, par "
        "aucun canal.",
        "resume": "Pour la reprendre, réparez votre point de réception (il doit répondre par un "
        "code 2xx), puis reprenez la recherche depuis votre espace Fabrique, ou par l'API : "
        "POST {url} avec votre jeton.",
        "dead": "Les alertes qui n'ont pas pu être livrées restent dans votre journal des "
        "envois ; vous pouvez les renvoyer une fois le webhook réparé.",
    },
    "en": {
        "subject": "Alerts paused: your webhook is not answering (“{name}”)",
        "why": "Your search “{name}” is paused: since {since} (UTC), none of the deliveries to "
        "your webhook ({host}) succeeded, for more than {days}.",
        "last": "Last error: {error}.",
        "nothing": "While it is paused, this search sends you nothing, on any channel.",
        "resume": "To resume it, fix your receiving endpoint (it must answer with a 2xx code), "
        "then resume the search from your Fabrique space, or with the API: POST {url} with "
        "your token.",
        "dead": "The alerts that could not be delivered stay in your delivery log; you can send "
        "them again once the webhook is fixed.",
    },
}

_DAYS = {"fr": {"day": "jour", "hour": "heure", "minute": "minute", "second": "seconde"}}


def _duration(seconds: float, language: str) -> str:
    words = duration_words(seconds)
    for english, french in _DAYS.get(language, {}).items():
        words = words.replace(english, french)
    return words


def webhook_disabled_email(
    *,
    language: str | None,
    subscription_id: str,
    name: str,
    webhook_host: str,
    failing_since: datetime,
    disabled_at: datetime,
    last_error: str | None,
    resume_url: str,
) -> WebhookDisabledEmail:
    """The e-mail's data (stored as the delivery's message)."""
    lang: Literal["fr", "en"] = "en" if language == "en" else "fr"
    return WebhookDisabledEmail(
        subject=_TEXT[lang]["subject"].format(name=name),
        language=lang,
        subscription=SubscriptionRef(id=subscription_id, name=name),
        webhook_host=webhook_host,
        failing_since=failing_since,
        disabled_at=disabled_at,
        last_error=last_error,
        resume_url=resume_url,
    )


def render(payload: dict[str, Any]) -> Rendered:
    """The stored message as plain text and HTML (a ValidationError when it is no such e-mail)."""
    email = WebhookDisabledEmail.model_validate(payload)
    text = _TEXT[email.language]
    failing_for = (email.disabled_at - email.failing_since).total_seconds()
    # Whole days (or hours) only: "more than 5 days", not "5.0001 days".
    unit = 86_400 if failing_for >= 86_400 else 3600 if failing_for >= 3600 else 1
    paragraphs = [
        text["why"].format(
            name=email.subscription.name,
            since=email.failing_since.strftime("%Y-%m-%d %H:%M"),
            host=email.webhook_host,
            days=_duration(max(1, failing_for // unit) * unit, email.language),
        )
    ]
    if email.last_error:
        paragraphs.append(text["last"].format(error=email.last_error))
    paragraphs += [text["nothing"], text["resume"].format(url=email.resume_url), text["dead"]]
    html = (
        f'<!doctype html><html lang="{email.language}"><body>'
        f'<h1 style="font-size:1.2em">{escape(email.subject)}</h1>'
        + "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        + "</body></html>"
    )
    return Rendered(email.subject, "\n\n".join(paragraphs) + "\n", html)
