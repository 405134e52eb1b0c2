"""One-click unsubscribe from e-mail alerts (RFC 8058), through the signed link in each e-mail."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from fabkit.errors import ProblemError
from notifications.api.deps import SessionsDep, SettingsDep
from notifications.mailer import read_unsubscribe_token
from notifications.service import subscriptions

router = APIRouter(prefix="/v1/unsubscribe", tags=["unsubscribe"])


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


@router.get(
    "/{token}",
    response_class=HTMLResponse,
    summary="Confirm unsubscribing",
    responses={404: {"description": "Invalid or expired link", "content": {"text/html": {}}}},
)
async def confirm_unsubscribe(token: str, settings: SettingsDep) -> HTMLResponse:
    # Reading the page changes nothing: mail scanners open links before people do.
    if read_unsubscribe_token(settings, token) is None:
        return HTMLResponse(_page("Lien invalide", "<p>Ce lien n'est pas valide.</p>"), 404)
    form = (
        f'<form method="post" action="{escape(token, quote=True)}">'
        '<button type="submit">Ne plus recevoir ces alertes par e-mail</button></form>'
    )
    return HTMLResponse(_page("Se désabonner des alertes e-mail", form))


@router.post(
    "/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe (one click)",
    responses={404: {"description": "Invalid or expired link", "content": {"text/html": {}}}},
)
async def unsubscribe_email(
    token: str, sessions: SessionsDep, settings: SettingsDep
) -> HTMLResponse:
    try:
        sub = await subscriptions.unsubscribe_email(sessions, settings, token)
    except ProblemError as exc:
        if exc.status != 404:
            raise
        # The form on the confirmation page posts here: a person reads the answer.
        return HTMLResponse(_page("Lien invalide", "<p>Ce lien n'est pas valide.</p>"), 404)
    return HTMLResponse(
        _page(
            "Désabonnement enregistré",
            f"<p>Vous ne recevrez plus par e-mail les alertes « {escape(sub.name)} ». "
            "Vos autres canaux (webhook, fil d'actualité) ne changent pas.</p>",
        )
    )
