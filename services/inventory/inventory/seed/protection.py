"""Demo data of the no-net-loss rule: one development project (Bercy-Charenton) and a few
losses of production m² — compensated, late, uncompensated — so that the officer pages, the
balance and the flags have something to show. Every figure here is invented (seed/README.md)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fabkit.auth import Principal, Role
from inventory.schemas import ProjectCreate, UnitPatch
from inventory.service.common import Sessions
from inventory.service.projects import create_project
from inventory.service.units import update_unit
from inventory.settings import InventorySettings

ADMIN = Principal(subject="seed", role=Role.ADMIN)
OFFICER = Principal(subject="seed", role=Role.OFFICER)
# The use cases read one setting (the reason's minimum length): its default, without reading
# the environment the seed runs in.
SETTINGS = InventorySettings.model_construct()

BERCY_CHARENTON = ProjectCreate(
    name="Bercy-Charenton",
    arrondissement=12,
    committed_m2=20_000,
    delivery_on=date(2032, 12, 31),
    description=(
        "New district between the Bercy rail yards and Charenton-le-Pont, the programme's "
        "example of production space kept in a new district. Demo data: the committed m² and "
        "the delivery date are invented, not the project's figures."
    ),
)


async def seed_protection(sessions: Sessions, units: list[dict[str, Any]]) -> dict[str, int]:
    """Record the project, link a unit of the 12th to it, and three losses (one compensated
    by the project, one whose compensation is late, one uncompensated)."""
    production = [
        u for u in units if u["use_class"] == "production" and u["status"] == "unavailable"
    ]
    in_12th = sorted(
        (u for u in production if u["site"]["arrondissement"] == 12),
        key=lambda u: -float(u["surface_m2"]),
    )
    elsewhere = [u for u in production if u["site"]["arrondissement"] != 12]
    if len(in_12th) < 2 or not elsewhere:
        return {"projects": 0, "losses": 0}
    project = (await create_project(sessions, ADMIN, BERCY_CHARENTON, None)).body
    shrunk, kept = in_12th[0], in_12th[1]
    removed = round(float(shrunk["surface_m2"]) / 4)
    late, lost = elsewhere[0], elsewhere[-1]
    changes = [
        (ADMIN, kept, {"project_id": project["id"]}),
        (
            ADMIN,
            shrunk,
            {
                "surface_m2": float(shrunk["surface_m2"]) - removed,
                "reason": "Demo: a storeroom carved out of the workshop.",
                "compensation": {
                    "m2": removed,
                    "arrondissement": 12,
                    "status": "planned",
                    "due_on": "2029-06-30",
                    "description": "Demo: ground-floor workshops of a Bercy-Charenton lot.",
                    "project_id": project["id"],
                },
            },
        ),
        (
            ADMIN,
            late,
            {
                "status": "withdrawn",
                "reason": "Demo: the lot closed for asbestos removal, then let as offices.",
                "compensation": {
                    "m2": late["surface_m2"],
                    "arrondissement": late["site"]["arrondissement"],
                    "status": "planned",
                    "due_on": "2026-09-30",
                    "description": "Demo: a workshop promised in the landlord's next building.",
                },
            },
        ),
        (
            OFFICER,
            lost,
            {
                "use_class": "other",
                "uncompensated": {
                    "reason": "Demo: turned into a showroom; no production space nearby."
                },
            },
        ),
    ]
    for principal, unit, patch in changes:
        await update_unit(
            sessions, SETTINGS, principal, unit["id"], UnitPatch.model_validate(patch), None
        )
    return {"projects": 1, "losses": 3}
