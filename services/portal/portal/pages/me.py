"""My space: the home page of a signed-in person, with the sections of their account (the
sections' pages live in their own modules)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portal.i18n import gettext
from portal.pages.deps import UserDep
from portal.rendering import render

router = APIRouter(include_in_schema=False)


def role_labels(roles: frozenset[str]) -> list[str]:
    """The realm's roles as a person reads them, highest first; unknown roles are left out."""
    labels = {
        "admin": gettext("Administrator"),
        "officer": gettext("City officer"),
        "landlord": gettext("Landlord staff"),
        "artisan": gettext("Artisan or cooperative"),
    }
    return [label for role, label in labels.items() if role in roles]


@router.get("/me", response_class=HTMLResponse)
async def my_space(request: Request, user: UserDep) -> HTMLResponse:
    return render(request, "me.html", {"role_labels": role_labels(user.roles)})
