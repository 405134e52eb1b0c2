"""Alerts without an account: public endpoints (no token) for guests, double opt-in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from notifications.api.deps import SessionsDep, SettingsDep
from notifications.schemas import (
    GuestConfirmationOut,
    GuestConfirmed,
    GuestSubscriptionAccepted,
    GuestSubscriptionCreate,
)
from notifications.service import guests

router = APIRouter(prefix="/v1/guest-subscriptions", tags=["guests"])

_PROBLEM = "application/problem+json"


def _problem(description: str, detail: str, **extra: Any) -> dict[str, Any]:
    example = {"type": "about:blank", "detail": detail, **extra}
    return {"description": description, "content": {_PROBLEM: {"example": example}}}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before asking again.",
        "schema": {"type": "integer"},
    }
}
_LINK_PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: _problem(
        "The link is not one this service made",
        "This confirmation link is not valid: check that the whole address from the e-mail "
        "was opened, or ask for alerts again from the board.",
        status=404,
        title="Not Found",
    ),
    410: _problem(
        "The link expired, or was used already",
        "This confirmation link has expired: ask for alerts again from the board and a new "
        "e-mail will be sent.",
        status=410,
        title="Gone",
        reason="expired",
    ),
}


@router.post(
    "",
    status_code=202,
    response_model=GuestSubscriptionAccepted,
    summary="Ask for e-mail alerts without an account (a confirmation e-mail is sent)",
    description=(
        "Sends one confirmation e-mail to the address; nothing else is sent to it before the "
        "link in that e-mail is confirmed. The answer is the same whether the address is new, "
        "waiting for its confirmation or already confirmed. Guests' alerts are not filtered "
        "by eligibility. Rate limits: confirmation e-mails per address per hour, and requests "
        "per minute over every address (429 with Retry-After)."
    ),
    responses={
        429: {
            **_problem(
                "Too many confirmation e-mails to this address, or requests overall",
                "3 confirmation e-mails were sent to this address within the hour: open the "
                "latest one, or ask again in 42 minutes.",
                status=429,
                title="Too Many Requests",
                retry_after_s=2520,
            ),
            "headers": _RETRY_AFTER,
        },
        503: {
            **_problem(
                "The confirmation e-mail could not be handed to the mail server",
                "The confirmation e-mail could not be sent just now: try again in a few minutes.",
                status=503,
                title="Service Unavailable",
            ),
            "headers": _RETRY_AFTER,
        },
    },
)
async def request_guest_alerts(
    payload: GuestSubscriptionCreate,
    response: Response,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> GuestSubscriptionAccepted:
    response.headers["Cache-Control"] = "no-store"
    return await guests.request_alerts(sessions, settings, payload)


@router.get(
    "/confirm/{token}",
    response_model=GuestConfirmationOut,
    summary="What a confirmation link would confirm (changes nothing)",
    description=(
        "Reading changes nothing, since mail scanners open links before people do: the "
        "portal's page shows this and a button that posts the confirmation."
    ),
    responses=_LINK_PROBLEMS,
)
async def read_guest_confirmation(
    token: str, response: Response, sessions: SessionsDep
) -> GuestConfirmationOut:
    response.headers["Cache-Control"] = "no-store"
    return await guests.read_confirmation(sessions, token)


@router.post(
    "/confirm/{token}",
    response_model=GuestConfirmed,
    summary="Confirm the alerts (single use): they start with the next matching vacancy",
    responses=_LINK_PROBLEMS,
)
async def confirm_guest_alerts(
    token: str, response: Response, sessions: SessionsDep, settings: SettingsDep
) -> GuestConfirmed:
    response.headers["Cache-Control"] = "no-store"
    return await guests.confirm(sessions, settings, token)
