"""My data (GDPR): what each service keeps and why, the download of everything the platform
holds about the person, and the erasure of their account.

- ``GET /me/data``: the page, saying which services cannot be reached right now.
- ``GET /me/data/export``: one JSON attachment gathering ``GET /v1/me/export`` of inventory,
  leasing and notifications (asked at once, with the person's token) and the portal's own part,
  their web sessions (when opened, last seen; never a token). A service that does not answer
  gets a part saying so and inviting to retry: the download still comes.
- ``GET /me/delete`` and ``POST /me/delete``: the confirmation (a box to tick, CSRF), then
  leasing's ``DELETE /v1/me``, notifications' ``DELETE /v1/me``, every web session of the
  person ended, and a last page (logged out) saying what was erased and what is kept, and why.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from portal.clients import (
    UpstreamNotFound,
    UpstreamRefused,
    Upstreams,
    UpstreamUnavailable,
    inventory,
    leasing,
    notifications,
    reachable,
)
from portal.i18n import gettext
from portal.models import WebSession
from portal.pages.deps import CsrfDep, SignedIn, UpstreamsDep, UserDep
from portal.rendering import render
from portal.sessions import SessionManager, clear_cookie_header, web_context

router = APIRouter(include_in_schema=False)
_ = gettext

SERVICES = ("inventory", "leasing", "notifications")
EXPORT_FILENAME = "fabrique-export.json"
CONFIRM = "confirm"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def unreachable_part(service: str) -> dict[str, Any]:
    """The part of the download for a service that did not answer."""
    return {
        "service": service,
        "error": "unreachable",
        "detail": _(
            "The %(service)s service could not be reached, so its part is missing. "
            "Download your data again in a few minutes."
        )
        % {"service": service},
    }


def refused_part(service: str, refused: UpstreamRefused) -> dict[str, Any]:
    return {
        "service": service,
        "error": "refused",
        "status": refused.status,
        "detail": refused.detail,
    }


def sessions_part(subject: str, rows: list[WebSession]) -> dict[str, Any]:
    """The portal's own part: the person's web sessions, without a token or a secret."""
    return {
        "service": "portal",
        "subject": subject,
        "generated_at": _now(),
        "records": {
            "web_sessions": [
                {
                    "created_at": row.created_at.isoformat(),
                    "last_seen_at": row.last_seen_at.isoformat(),
                    "expires_at": row.expires_at.isoformat(),
                    "name": row.name,
                    "email": row.email,
                    "roles": list(row.roles),
                }
                for row in rows
            ]
        },
    }


async def _part(service: str, call: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return await call()
    except UpstreamUnavailable:
        return unreachable_part(service)
    except UpstreamNotFound:
        return unreachable_part(service)
    except UpstreamRefused as exc:
        return refused_part(service, exc)


async def gather_export(
    upstreams: Upstreams, manager: SessionManager, user: SignedIn
) -> dict[str, Any]:
    """The whole document: the three services' exports asked at once, and the portal's part."""
    token = user.access_token
    parts = await asyncio.gather(
        _part("inventory", lambda: inventory.export_me(upstreams, token)),
        _part("leasing", lambda: leasing.export_me(upstreams, token)),
        _part("notifications", lambda: notifications.export_me(upstreams, token)),
    )
    services: dict[str, Any] = dict(zip(SERVICES, parts, strict=True))
    services["portal"] = sessions_part(user.sub, await manager.of_subject(user.sub))
    return {"generated_at": _now(), "subject": user.sub, "services": services}


def _manager(request: Request) -> SessionManager:
    return request.app.state.sessions  # type: ignore[no-any-return]


@router.get("/me/data", response_class=HTMLResponse)
async def my_data(request: Request, user: UserDep, upstreams: UpstreamsDep) -> HTMLResponse:
    clients = upstreams.named()
    up = await asyncio.gather(*(reachable(clients[s]) for s in SERVICES))
    down = [s for s, ok in zip(SERVICES, up, strict=True) if not ok]
    return render(request, "privacy_data.html", {"down": down})


@router.get("/me/data/export")
async def download(request: Request, user: UserDep, upstreams: UpstreamsDep) -> Response:
    document = await gather_export(upstreams, _manager(request), user)
    return Response(
        json.dumps(document, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{EXPORT_FILENAME}"',
            "Cache-Control": "no-store",
        },
    )


def _delete_page(
    request: Request, errors: dict[str, str] | None = None, *, failed: str | None = None,
    status: int = 200,
) -> HTMLResponse:  # fmt: skip
    return render(
        request, "privacy_delete.html", {"errors": errors or {}, "failed": failed}, status=status
    )


@router.get("/me/delete", response_class=HTMLResponse)
async def delete_page(request: Request, user: UserDep) -> HTMLResponse:
    return _delete_page(request)


@router.post("/me/delete", response_model=None)
async def delete_account(
    request: Request, user: UserDep, upstreams: UpstreamsDep, _csrf: CsrfDep
) -> Response:
    form = await request.form()
    if str(form.get(CONFIRM) or "") != "yes":
        errors = {
            CONFIRM: _(
                "Tick the box to confirm that you want your account and your data erased; "
                "nothing has been erased."
            )
        }
        return _delete_page(request, errors, status=400)
    kept: list[dict[str, Any]] = []
    step = "leasing"
    try:
        if "artisan" in user.roles:
            answer = await leasing.erase_me(upstreams, user.access_token)
            kept += [k for k in answer.get("kept", []) if isinstance(k, dict)]
        step = "notifications"
        answer = await notifications.erase_me(upstreams, user.access_token)
        kept += [k for k in answer.get("kept", []) if isinstance(k, dict)]
    except (UpstreamUnavailable, UpstreamNotFound, UpstreamRefused):
        # Both calls are idempotent: sending the form again finishes what was started.
        return _delete_page(request, failed=step, status=503)
    await _manager(request).end_all(user.sub)
    web = web_context(request.state)
    if web is not None:
        web.user = None
        web.session_id_hash = None
        manager = _manager(request)
        web.set_cookies.append(clear_cookie_header(manager.cookies.session, secure=manager.secure))
    return render(request, "privacy_deleted.html", {"kept": kept})
