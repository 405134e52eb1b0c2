"""What the inventory use cases share: the session factory, new ids, who acts and may act."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal, Role
from fabkit.errors import ProblemError

Sessions = async_sessionmaker[AsyncSession]


def new_id() -> str:
    """A new aggregate id (UUID 4, as text)."""
    return str(uuid.uuid4())


def actor(principal: Principal) -> str:
    """Who made a change, as the ledger records it: `role:subject`."""
    return f"{principal.role.value}:{principal.subject}"


def check_owner(principal: Principal, landlord_id: str, what: str) -> None:
    """403 unless the caller is an admin or the landlord that owns this site or unit."""
    if principal.is_admin:
        return
    if principal.role is not Role.LANDLORD or principal.subject != landlord_id:
        raise ProblemError(403, f"This {what} belongs to another landlord; you cannot change it.")


def stored(value: Any) -> Any:
    """A patched value as the table stores it (enums as their text)."""
    return value.value if isinstance(value, Enum) else value
