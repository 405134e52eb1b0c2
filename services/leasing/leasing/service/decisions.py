"""An application's state machine: every decision is kept, and told to the applicant."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.db import on_commit
from fabkit.errors import ProblemError
from fabkit.events import EventPayload
from leasing import repository as repo
from leasing.domain import ApplicationStatus, Decision, LeaseStatus, TransitionError, check_decision
from leasing.events.published import (
    ApplicationDecided,
    ApplicationSnapshot,
    ApplicationWithdrawn,
    emit,
)
from leasing.metrics import DECISIONS
from leasing.models import Application, ApplicationDecision, Lease
from leasing.service.common import Actor


def decide(
    session: AsyncSession,
    app: Application,
    decision: Decision,
    actor: Actor,
    reason: str | None,
    lease_id: str | None,
    now: datetime,
    *,
    ground: str | None = None,
) -> None:
    """Apply a decision to an application, keep it, and tell the applicant (an event); an
    out-of-rank offer or a rejection in a call carries its published ground."""
    try:
        status = check_decision(ApplicationStatus(app.status), decision)
    except TransitionError as exc:
        raise ProblemError(409, str(exc)) from exc
    app.status = status.value
    app.updated_at = now
    session.add(
        ApplicationDecision(
            application_id=app.id,
            decision=decision.value,
            status_after=status.value,
            actor_role=actor.role,
            actor_id=actor.id,
            reason=reason,
            lease_id=lease_id,
            decided_at=now,
            ground=ground,
        )
    )
    snapshot = ApplicationSnapshot.from_model(app)
    payload: EventPayload
    if decision is Decision.WITHDRAWN:
        payload = ApplicationWithdrawn(application=snapshot, reason=reason, withdrawn_at=now)
    else:
        payload = ApplicationDecided(
            application=snapshot,
            artisan_id=app.artisan_id,
            decision=decision.value,
            reason=reason,
            decided_by_role=actor.role,
            decided_at=now,
            lease_id=lease_id,
            ground=ground,
        )
    emit(session, app.id, payload)
    on_commit(session, lambda: DECISIONS.labels(decision.value).inc())


def set_lease_status(lease: Lease, status: LeaseStatus, now: datetime) -> None:
    """Move a lease to `status` as a new version."""
    lease.status = status.value
    lease.version += 1
    lease.updated_at = now


async def withdraw_offer(
    session: AsyncSession, app: Application, reason: str | None, now: datetime
) -> str | None:
    """Take back the open offer of an application, if it has one; its lease id."""
    if app.status != ApplicationStatus.OFFERED:
        return None
    lease = await repo.lease_of_application(session, app.id, for_update=True)
    if lease is None or lease.status != LeaseStatus.OFFERED:
        return None
    set_lease_status(lease, LeaseStatus.WITHDRAWN, now)
    lease.end_reason = reason
    return lease.id
