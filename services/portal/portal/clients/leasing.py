"""Leasing: listings, programmes, and (with the visitor's token) profiles, applications and
leases."""

from __future__ import annotations

from typing import Any

from portal.clients.base import (
    API_PAGE_MAX,
    UpstreamNotFound,
    UpstreamRefused,
    Upstreams,
    UpstreamUnavailable,
    document,
    get,
    request,
    segment,
)
from portal.schemas import (
    Appeal,
    AppealPage,
    Application,
    ApplicationPage,
    Call,
    CallPage,
    CallRanking,
    CallResults,
    Catalogue,
    Eligibility,
    JuryView,
    LandlordRanking,
    Lease,
    LeasePage,
    LettingStats,
    Listing,
    Profile,
    ResultsPage,
)

SERVICE = "leasing"


async def get_listing(upstreams: Upstreams, unit_id: str) -> Listing | None:
    """Leasing's listing of a unit; None while leasing has not heard of the unit yet."""
    try:
        return await get("leasing", upstreams.leasing, f"/v1/units/{segment(unit_id)}", Listing)
    except UpstreamNotFound:
        return None


async def get_catalogue(upstreams: Upstreams) -> Catalogue:
    return await get("leasing", upstreams.leasing, "/v1/programmes", Catalogue)


# The signed-in artisan's profile -------------------------------------------------------------


async def get_profile(upstreams: Upstreams, token: str) -> tuple[Profile, str] | None:
    """The artisan's profile and its ETag; None when the account has no profile yet."""
    headers: dict[str, str] = {}
    try:
        profile = await request(
            SERVICE,
            upstreams.leasing,
            "GET",
            "/v1/artisans/me",
            Profile,
            token=token,
            answer_headers=headers,
        )
    except UpstreamNotFound:
        return None
    return _with_etag(profile, headers)


async def create_profile(
    upstreams: Upstreams, token: str, body: dict[str, Any]
) -> tuple[Profile, str]:
    """Register the account's profile (leasing needs the artisan role and a verified e-mail)."""
    headers: dict[str, str] = {}
    profile = await request(
        SERVICE,
        upstreams.leasing,
        "POST",
        "/v1/artisans",
        Profile,
        token=token,
        json=body,
        answer_headers=headers,
    )
    return _with_etag(profile, headers)


async def update_profile(
    upstreams: Upstreams, token: str, changes: dict[str, Any], etag: str
) -> tuple[Profile, str]:
    """Change the fields sent, only if the profile is still at `etag` (else a 412 refusal)."""
    headers: dict[str, str] = {}
    profile = await request(
        SERVICE,
        upstreams.leasing,
        "PATCH",
        "/v1/artisans/me",
        Profile,
        token=token,
        json=changes,
        headers={"If-Match": etag},
        answer_headers=headers,
    )
    return _with_etag(profile, headers)


def _with_etag(profile: Profile | None, headers: dict[str, str]) -> tuple[Profile, str]:
    if profile is None:
        raise UpstreamUnavailable(SERVICE, "empty answer")
    return profile, headers.get("etag", f'"{profile.version}"')


# Eligibility and applications --------------------------------------------------------------


async def check_eligibility(upstreams: Upstreams, token: str, unit_id: str) -> Eligibility:
    """How the artisan fares under each programme of the unit (no application made)."""
    path = f"/v1/units/{segment(unit_id)}/eligibility"
    return await get(SERVICE, upstreams.leasing, path, Eligibility, token=token)


async def submit_application(
    upstreams: Upstreams,
    token: str,
    *,
    unit_id: str,
    programme_id: str | None,
    project: str,
    idempotency_key: str | None,
) -> Application:
    """Apply to the unit's open vacancy; a form sent twice (same key) is one application."""
    body: dict[str, Any] = {"unit_id": unit_id, "project": project}
    if programme_id:
        body["programme_id"] = programme_id
    answer = await request(
        SERVICE,
        upstreams.leasing,
        "POST",
        "/v1/applications",
        Application,
        token=token,
        json=body,
        headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
    )
    if answer is None:
        raise UpstreamUnavailable(SERVICE, "empty answer")
    return answer


async def list_applications(
    upstreams: Upstreams,
    token: str,
    *,
    unit_id: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> ApplicationPage:
    params: list[tuple[str, str | int | float]] = [("limit", limit), ("offset", offset)]
    if unit_id:
        params.append(("unit_id", unit_id))
    return await get(
        SERVICE, upstreams.leasing, "/v1/applications", ApplicationPage, params, token=token
    )


async def get_application(upstreams: Upstreams, token: str, application_id: str) -> Application:
    path = f"/v1/applications/{segment(application_id)}"
    return await get(SERVICE, upstreams.leasing, path, Application, token=token)


async def withdraw_application(
    upstreams: Upstreams, token: str, application_id: str, reason: str | None
) -> Application:
    answer = await request(
        SERVICE,
        upstreams.leasing,
        "POST",
        f"/v1/applications/{segment(application_id)}/withdraw",
        Application,
        token=token,
        json={"reason": reason} if reason else None,
    )
    if answer is None:
        raise UpstreamUnavailable(SERVICE, "empty answer")
    return answer


# Offers and leases -------------------------------------------------------------------------


async def list_leases(
    upstreams: Upstreams, token: str, *, limit: int = 100, offset: int = 0
) -> LeasePage:
    params: list[tuple[str, str | int | float]] = [("limit", limit), ("offset", offset)]
    return await get(SERVICE, upstreams.leasing, "/v1/leases", LeasePage, params, token=token)


async def get_lease(upstreams: Upstreams, token: str, lease_id: str) -> Lease:
    path = f"/v1/leases/{segment(lease_id)}"
    return await get(SERVICE, upstreams.leasing, path, Lease, token=token)


async def answer_offer(
    upstreams: Upstreams, token: str, lease_id: str, *, accept: bool, reason: str | None = None
) -> Lease:
    """Accept (sign) or decline an offer."""
    verb = "accept" if accept else "decline"
    answer = await request(
        SERVICE,
        upstreams.leasing,
        "POST",
        f"/v1/leases/{segment(lease_id)}/{verb}",
        Lease,
        token=token,
        json={"reason": reason} if (reason and not accept) else None,
    )
    if answer is None:
        raise UpstreamUnavailable(SERVICE, "empty answer")
    return answer


async def letting_stats(upstreams: Upstreams, token: str, since: str, until: str) -> LettingStats:
    """Open vacancies and time to let by arrondissement and site kind (officers, admins)."""
    return await get(
        "leasing",
        upstreams.leasing,
        "/v1/stats/letting",
        LettingStats,
        [("since", since), ("until", until)],
        token=token,
    )


async def list_calls(
    upstreams: Upstreams, token: str, status: str | None, limit: int, offset: int
) -> CallPage:
    """Calls for applications, newest first as leasing lists them (public; asked with the
    officer's token all the same)."""
    params: list[tuple[str, str | int]] = [("limit", limit), ("offset", offset)]
    if status:
        params.append(("status", status))
    return await get("leasing", upstreams.leasing, "/v1/calls", CallPage, params, token=token)


async def get_call(upstreams: Upstreams, token: str, call_id: str) -> Call:
    return await get(
        "leasing", upstreams.leasing, f"/v1/calls/{segment(call_id)}", Call, token=token
    )


async def call_ranking(upstreams: Upstreams, token: str, call_id: str) -> CallRanking | None:
    """The frozen ranking with names and decisions; None while the call has none."""
    try:
        return await get(
            "leasing",
            upstreams.leasing,
            f"/v1/calls/{segment(call_id)}/ranking",
            CallRanking,
            token=token,
        )
    except UpstreamNotFound:
        return None
    except UpstreamRefused as exc:
        if exc.status == 409:  # not frozen, or not published, yet
            return None
        raise


async def call_results(upstreams: Upstreams, call_id: str) -> CallResults | None:
    """The published results (public); None until they are published."""
    try:
        return await get(
            "leasing", upstreams.leasing, f"/v1/calls/{segment(call_id)}/results", CallResults
        )
    except UpstreamNotFound:
        return None
    except UpstreamRefused as exc:
        if exc.status == 409:  # not frozen, or not published, yet
            return None
        raise


async def list_results(upstreams: Upstreams, limit: int, offset: int) -> ResultsPage:
    """The calls whose results are published, the latest first (public)."""
    params: list[tuple[str, str | int]] = [("limit", limit), ("offset", offset)]
    return await get("leasing", upstreams.leasing, "/v1/results", ResultsPage, params)


async def unit_results(upstreams: Upstreams, unit_id: str) -> list[Call]:
    """A unit's calls whose results are published, newest first (public)."""
    params: list[tuple[str, str | int]] = [
        ("unit_id", unit_id), ("status", "results_published"), ("limit", 10),
    ]  # fmt: skip
    return (await get("leasing", upstreams.leasing, "/v1/calls", CallPage, params)).items


async def file_appeal(
    upstreams: Upstreams, token: str, application_id: str, grounds: str
) -> Appeal:
    """The applicant's appeal against the published results (leasing checks the period)."""
    answer = await request(
        SERVICE,
        upstreams.leasing,
        "POST",
        f"/v1/applications/{segment(application_id)}/appeal",
        Appeal,
        token=token,
        json={"grounds": grounds},
    )
    if answer is None:
        raise UpstreamUnavailable(SERVICE, "empty answer")
    return answer


async def my_appeals(upstreams: Upstreams, token: str, call_id: str) -> list[Appeal]:
    """The signed-in applicant's own appeals against a call (leasing lists only theirs)."""
    page = await get(
        SERVICE, upstreams.leasing, "/v1/appeals", AppealPage,
        [("call_id", call_id), ("limit", API_PAGE_MAX)], token=token,
    )  # fmt: skip
    return page.items


async def call_appeals(upstreams: Upstreams, token: str, call_id: str) -> list[Appeal]:
    """Every appeal against a call's results, with its answer (officers and admins see all)."""
    found: list[Appeal] = []
    offset = 0
    while True:
        page = await get(
            "leasing",
            upstreams.leasing,
            "/v1/appeals",
            AppealPage,
            [("call_id", call_id), ("limit", API_PAGE_MAX), ("offset", offset)],
            token=token,
        )
        found.extend(page.items)
        offset += API_PAGE_MAX
        if offset >= page.total or not page.items:
            return found


# A landlord's calls: the ranking they decide on, offers and rejections ------------------------


async def landlord_calls(upstreams: Upstreams, token: str, landlord_id: str) -> CallPage:
    """The landlord's calls (up to 100), newest first."""
    params: list[tuple[str, str | int]] = [("landlord_id", landlord_id), ("limit", API_PAGE_MAX)]
    return await get("leasing", upstreams.leasing, "/v1/calls", CallPage, params, token=token)


async def landlord_ranking(
    upstreams: Upstreams, token: str, call_id: str
) -> LandlordRanking | None:
    """The frozen ranking with points per criterion; None while the call is not closed."""
    try:
        return await get(
            "leasing", upstreams.leasing, f"/v1/calls/{segment(call_id)}/ranking",
            LandlordRanking, token=token,
        )  # fmt: skip
    except UpstreamRefused as exc:
        if exc.status == 409:
            return None
        raise


async def offer_lease(
    upstreams: Upstreams, token: str, application_id: str, body: dict[str, Any], key: str
) -> None:
    """Offer the unit to an applicant (terms, and the out-of-rank ground when it skips one)."""
    await request(
        SERVICE, upstreams.leasing, "POST", f"/v1/applications/{segment(application_id)}/offer",
        token=token, json=body, headers={"Idempotency-Key": key},
    )  # fmt: skip


async def reject_application(
    upstreams: Upstreams, token: str, application_id: str, body: dict[str, Any]
) -> None:
    await request(
        SERVICE, upstreams.leasing, "POST", f"/v1/applications/{segment(application_id)}/reject",
        token=token, json=body,
    )  # fmt: skip


async def get_jury(upstreams: Upstreams, token: str, call_id: str) -> JuryView | None:
    """The call's jury record; None while none is recorded."""
    try:
        return await get(
            SERVICE, upstreams.leasing, f"/v1/calls/{segment(call_id)}/jury", JuryView,
            token=token,
        )  # fmt: skip
    except UpstreamNotFound:
        return None


async def put_jury(upstreams: Upstreams, token: str, call_id: str, body: dict[str, Any]) -> None:
    """Record (or replace) the call's jury."""
    await request(
        SERVICE, upstreams.leasing, "PUT", f"/v1/calls/{segment(call_id)}/jury",
        token=token, json=body,
    )  # fmt: skip


# Personal data (GDPR) ------------------------------------------------------------------------


async def export_me(upstreams: Upstreams, token: str) -> dict[str, Any]:
    """GET /v1/me/export: everything leasing holds about the caller, as it sent it."""
    return await document(SERVICE, upstreams.leasing, "GET", "/v1/me/export", token=token)


async def erase_me(upstreams: Upstreams, token: str) -> dict[str, Any]:
    """DELETE /v1/me: leasing erases what it holds about the caller (202, idempotent); the
    answer's ``kept`` lists what a legal duty keeps, and why."""
    return await document(SERVICE, upstreams.leasing, "DELETE", "/v1/me", token=token)
