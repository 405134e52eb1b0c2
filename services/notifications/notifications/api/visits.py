"""Workshop visits: public endpoints (no token) to list, book and cancel, the iCalendar feed,
and the hosts' view of their bookings (landlords and artisans)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from fabkit.auth import Principal, Role, require_roles
from fabkit.pagination import Page, PageDep
from fabkit.schemas import IsoDateTime
from notifications.api.deps import SessionsDep, SettingsDep
from notifications.schemas import (
    HostedVisitOut,
    VisitBookingCreate,
    VisitBookingOut,
    VisitCancel,
    VisitCancelled,
    VisitOut,
)
from notifications.service import visits
from notifications.service.visits import FULL, VisitFilters

router = APIRouter(tags=["visits"])

_PROBLEM = "application/problem+json"
SlotId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Word = Annotated[str | None, Query(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
HostOnly = require_roles(Role.LANDLORD, Role.ARTISAN)


def _problem(description: str, detail: str, status: int, **extra: Any) -> dict[str, Any]:
    example = {"type": "about:blank", "status": status, "detail": detail, **extra}
    return {"description": description, "content": {_PROBLEM: {"example": example}}}


_NOT_FOUND = _problem(
    "No such visit", "No visit with id slot-x: other visits are listed at /visites.", 404
)


@router.get(
    "/v1/visits",
    response_model=Page[VisitOut],
    summary="Upcoming workshop visits, soonest first, with the places left",
    description="Public (no token). Only scheduled visits that have not started are listed; "
    "`language`, `trade` and `accessibility` keep the visits that offer it.",
)
async def list_visits(
    sessions: SessionsDep,
    page: PageDep,
    arrondissement: Annotated[int | None, Query(ge=1, le=20)] = None,
    trade: Word = None,
    language: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None,
    accessibility: Word = None,
    from_: Annotated[
        IsoDateTime | None, Query(alias="from", description="Visits starting at or after (UTC)")
    ] = None,
    to: Annotated[
        IsoDateTime | None, Query(description="Visits starting at or before (UTC)")
    ] = None,
) -> Page[VisitOut]:
    filters = VisitFilters(
        arrondissement=arrondissement,
        trade=trade,
        language=language,
        accessibility=accessibility,
        from_=from_,
        to=to,
    )
    return await visits.list_visits(sessions, filters, page)


@router.get(
    "/v1/visits.ics",
    summary="The upcoming visits as an iCalendar feed (RFC 5545)",
    description="Public (no token): subscribe to it from a calendar application. One event "
    "per visit, its UID stable, times in UTC, the address as LOCATION and the visit's page as "
    "URL.",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {"schema": {"type": "string"}}}}},
)
async def visits_calendar(
    sessions: SessionsDep,
    settings: SettingsDep,
    arrondissement: Annotated[int | None, Query(ge=1, le=20)] = None,
) -> Response:
    body = await visits.ical_feed(sessions, settings, arrondissement)
    return Response(
        content=body.encode("utf-8"),
        media_type="text/calendar; charset=utf-8",
        headers={
            "Cache-Control": "public, max-age=300",
            "Content-Disposition": 'inline; filename="visites.ics"',
        },
    )


@router.get(
    "/v1/visits/hosted",
    response_model=Page[HostedVisitOut],
    summary="The visits you host, with their bookings (landlords and artisans)",
    description="A landlord sees every visit of its sites, an artisan the ones it opens, from "
    "30 days back, soonest first. The booked addresses are shown only to the visit's host: a "
    "landlord sees the counts, not the addresses, of the visits its tenants open.",
)
async def list_hosted_visits(
    sessions: SessionsDep, page: PageDep, principal: Principal = HostOnly
) -> Page[HostedVisitOut]:
    return await visits.hosted(sessions, principal, page)


@router.get(
    "/v1/visits/{slot_id}",
    response_model=VisitOut,
    summary="One visit, with the places left",
    responses={404: _NOT_FOUND},
)
async def read_visit(slot_id: SlotId, sessions: SessionsDep) -> VisitOut:
    return await visits.get_visit(sessions, slot_id)


@router.post(
    "/v1/visits/{slot_id}/bookings",
    status_code=201,
    response_model=VisitBookingOut,
    summary="Book places on a visit with an e-mail address (no account)",
    description="Public (no token). Takes 1 to 4 places, never more than are free (two "
    "bookings at once cannot overbook), and mails a confirmation with the cancellation link "
    "(the portal's `/visites/annuler/<token>`); a reminder follows the day before. Bookings "
    "per address per hour are limited (429).",
    responses={
        404: _NOT_FOUND,
        409: _problem(
            "The visit is full, cancelled, started, or already booked", FULL, 409, reason="full"
        ),
        429: _problem(
            "Too many bookings with this address",
            "5 visits were booked with this address within the hour: ask again in an hour, or "
            "cancel a booking you do not need.",
            429,
            retry_after_s=3600,
        ),
        503: _problem(
            "The confirmation e-mail could not be sent (nothing was booked)",
            "The confirmation e-mail could not be sent just now, so nothing was booked: try "
            "again in a few minutes.",
            503,
        ),
    },
)
async def book_visit(
    slot_id: SlotId,
    payload: VisitBookingCreate,
    response: Response,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> VisitBookingOut:
    response.headers["Cache-Control"] = "no-store"
    return await visits.book(sessions, settings, slot_id, payload)


@router.post(
    "/v1/visits/bookings/cancel",
    response_model=VisitCancelled,
    summary="Cancel a booking with its e-mail's link (frees its places; idempotent)",
    description="Public (no token): the token of the cancellation link is the credential. "
    "Cancelling twice answers the same, with no place freed the second time.",
    responses={
        404: _problem(
            "The token is not one this service made",
            "This cancellation link is not valid: check that the whole address from the "
            "e-mail was opened.",
            404,
        )
    },
)
async def cancel_visit_booking(
    payload: VisitCancel, response: Response, sessions: SessionsDep
) -> VisitCancelled:
    response.headers["Cache-Control"] = "no-store"
    return await visits.cancel(sessions, payload.token)
