"""Retention: how long leasing keeps personal data, and the daily job that applies it.

The rules are data (`RULES`, served by `GET /v1/privacy/retention` and restated in
docs/privacy.md's register); `apply_retention(sessions, now)` is one run of the job, each rule
on its own so that one failing does not stop the others. Every change to a person's rows is
its own transaction under a row lock that other replicas skip (SKIP LOCKED), and every
condition is checked again under that lock. Inactive accounts are erased by
`privacy.erase()`, the one erasure path (self, admin, retention). Nothing personal is logged:
ids and counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from fabkit.outbox import prune_published
from leasing import repository as repo
from leasing.events.published import ArtisanInactivityWarned, emit
from leasing.schemas import RetentionReport, RetentionRuleOut, RetentionRuleRun
from leasing.service import privacy
from leasing.service.common import Sessions, utcnow
from leasing.settings import LeasingSettings

log = logging.getLogger(__name__)

INACTIVE_ACCOUNTS = "inactive_accounts"
UNSELECTED_APPLICATIONS = "unselected_applications"
PUBLISHED_OUTBOX = "published_outbox"
PRIVACY_REQUESTS = "privacy_requests"
ENDED_LEASES = "ended_leases"


@dataclass(frozen=True)
class Periods:
    """The retention periods (LEASING_RETENTION_* settings; the defaults are the rules')."""

    inactive_after: timedelta = timedelta(days=730)
    warning: timedelta = timedelta(days=30)
    applications_after: timedelta = timedelta(days=730)
    contract: timedelta = timedelta(days=1826)
    privacy_requests: timedelta = timedelta(days=1826)
    outbox: timedelta = timedelta(days=8)

    @classmethod
    def of(cls, settings: LeasingSettings) -> Periods:
        return cls(
            inactive_after=timedelta(days=settings.retention_inactive_after_days),
            warning=timedelta(days=settings.retention_warning_days),
            applications_after=timedelta(days=settings.retention_applications_after_days),
            contract=timedelta(days=settings.retention_contract_days),
            privacy_requests=timedelta(days=settings.retention_privacy_requests_days),
            outbox=timedelta(days=settings.retention_outbox_days),
        )

    def contract_cut(self, now: datetime) -> date:
        """Leases that ended before this day are past the limitation period."""
        return (now - self.contract).date()


@dataclass(frozen=True)
class Rule:
    """One retention rule: what it keeps, for how long (a period of `Periods`), and why."""

    name: str
    table: str
    period: str  # the attribute of Periods
    setting: str
    counted_from: str
    kept: str
    legal_basis: str

    def out(self, periods: Periods) -> RetentionRuleOut:
        length: timedelta = getattr(periods, self.period)
        days = length.total_seconds() / 86400
        shown = f"{days:g} days"
        return RetentionRuleOut(
            rule=self.name,
            table=self.table,
            kept=self.kept,
            period_days=days,
            period=f"{shown} after {self.counted_from}",
            setting=self.setting,
            legal_basis=self.legal_basis,
        )


RULES: tuple[Rule, ...] = (
    Rule(
        name=INACTIVE_ACCOUNTS,
        table="artisan_profiles",
        period="inactive_after",
        setting="LEASING_RETENTION_INACTIVE_AFTER_DAYS",
        counted_from="the artisan's last activity (registration, a change they made, reading "
        "their profile)",
        kept="The profile (names, SIRET, contact e-mail, trades, labels) while the artisan is "
        "active. After the period without activity the artisan is warned by e-mail "
        "(leasing.artisan.inactivity_warned.v1) and, unless active again, erased "
        "LEASING_RETENTION_WARNING_DAYS (30) days later like any erasure (profile "
        "pseudonymised, texts replaced, the identity provider's account deleted; requested_by "
        "retention). Activity after the warning cancels it. An artisan with a signed lease "
        "running or ended less than LEASING_RETENTION_CONTRACT_DAYS ago is neither warned "
        "nor erased: the profile is kept with the lease.",
        legal_basis="Public-interest task, art. 6(1)(e); CNIL's guidance for candidates not "
        "selected: about two years after the last contact. A lease is a contract, art. "
        "6(1)(b), kept for the limitation period (Code civil art. 2224).",
    ),
    Rule(
        name=UNSELECTED_APPLICATIONS,
        table="applications",
        period="applications_after",
        setting="LEASING_RETENTION_APPLICATIONS_AFTER_DAYS",
        counted_from="the call's decision (or the application's last change, when later or "
        "without a call)",
        kept="An application that did not lead to a signed lease (rejected, withdrawn, "
        "declined, expired, closed, or still waiting when its call was decided) keeps its ids, "
        "status, "
        "scores and decisions (the published results stay checkable); its project text and "
        "the artisan's own texts (the reasons they gave, their appeal grounds) are replaced "
        "once by the erased text (applications.pseudonymised_at). An appeal awaiting its "
        "answer holds it back.",
        legal_basis="Public-interest task, art. 6(1)(e); transparency of the allocation for "
        "the results; CNIL's guidance for candidates not selected (two years).",
    ),
    Rule(
        name=ENDED_LEASES,
        table="leases",
        period="contract",
        setting="LEASING_RETENTION_CONTRACT_DAYS",
        counted_from="the lease's end",
        kept="The lease's terms and the parties' ids; its free texts (the offer's message, "
        "the reason it ended) are cleared after the period.",
        legal_basis="A contract, art. 6(1)(b); the limitation period is 5 years after its end "
        "(Code civil art. 2224).",
    ),
    Rule(
        name=PRIVACY_REQUESTS,
        table="privacy_requests",
        period="privacy_requests",
        setting="LEASING_RETENTION_PRIVACY_REQUESTS_DAYS",
        counted_from="the request",
        kept="The audit log of exports and erasures (ids, who asked, the written request's "
        "reference), then deleted.",
        legal_basis="Legal obligation, art. 6(1)(c) with art. 5(2) (accountability): the proof "
        "that each request was answered, for the limitation period (5 years).",
    ),
    Rule(
        name=PUBLISHED_OUTBOX,
        table="outbox_messages",
        period="outbox",
        setting="LEASING_RETENTION_OUTBOX_DAYS",
        counted_from="the event's publication",
        kept="The events the relay published (profiles included), until the topics' own "
        "retention (7 days) has passed, then deleted; rows not yet published are never "
        "deleted.",
        legal_basis="As the record each event carries; kept only while a replay from the "
        "outbox could still be needed.",
    ),
)


def rules(periods: Periods) -> list[RetentionRuleOut]:
    """The rules as the job applies them with these periods."""
    return [rule.out(periods) for rule in RULES]


# One run ------------------------------------------------------------------------------------

Counts = dict[str, int]
Step = Callable[[Sessions, datetime, Periods, int], Awaitable[Counts]]


async def _drain(
    fetch: Callable[[], Awaitable[list[str]]],
    act: Callable[[str], Awaitable[bool]],
    batch: int,
) -> int:
    """Act on the ids `fetch` gives, batch after batch, until a batch is short or nothing in
    it could be acted on (held by another replica); how many were acted on."""
    done = 0
    while True:
        ids = await fetch()
        acted = 0
        for item in ids:
            acted += await act(item)
        done += acted
        if len(ids) < batch or acted == 0:
            return done


async def _inactive_accounts(sessions: Sessions, now: datetime, p: Periods, batch: int) -> Counts:
    active_before = now - p.inactive_after
    lease_cut = p.contract_cut(now)

    async def cancel(artisan_id: str) -> bool:
        async with sessions() as session, session.begin():
            artisan = await repo.lock_artisan(session, artisan_id)
            if artisan is None or artisan.inactivity_warned_at is None:
                return False
            if artisan.last_active_at <= artisan.inactivity_warned_at:
                return False
            artisan.inactivity_warned_at = artisan.inactivity_erasure_due_at = None
            return True

    async def warn(artisan_id: str) -> bool:
        async with sessions() as session, session.begin():
            artisan = await repo.lock_artisan(session, artisan_id)
            if (
                artisan is None
                or artisan.erased_at is not None
                or artisan.last_active_at >= active_before
                or artisan.inactivity_warned_at is not None
                or await repo.has_protecting_lease(session, artisan_id, lease_cut)
            ):
                return False
            due = now + p.warning
            artisan.inactivity_warned_at, artisan.inactivity_erasure_due_at = now, due
            emit(
                session,
                artisan_id,
                ArtisanInactivityWarned(
                    artisan_id=artisan_id,
                    warned_at=now,
                    erasure_due_at=due,
                    last_active_at=artisan.last_active_at,
                ),
            )
            return True

    kept_after_warning = 0
    failures: list[str] = []

    async def erase(artisan_id: str) -> bool:
        nonlocal kept_after_warning
        async with sessions() as session, session.begin():
            artisan = await repo.lock_artisan(session, artisan_id)
            if (
                artisan is None
                or artisan.erased_at is not None
                or artisan.inactivity_warned_at is None
                or artisan.inactivity_erasure_due_at is None
                or artisan.last_active_at > artisan.inactivity_warned_at
                or artisan.inactivity_erasure_due_at > now
            ):
                return False
            if await repo.has_protecting_lease(session, artisan_id, lease_cut):
                # A lease signed meanwhile keeps the profile: the warning lapses.
                artisan.inactivity_warned_at = artisan.inactivity_erasure_due_at = None
                kept_after_warning += 1
                return False
            warned_on = artisan.inactivity_warned_at.date().isoformat()
            last_active = artisan.last_active_at.date().isoformat()
        # erase() is its own transaction (the one erasure path); activity landing between the
        # check above and it is a few milliseconds' window, and erasing is what was announced.
        try:
            await privacy.erase(
                sessions,
                privacy.RETENTION,
                artisan_id,
                reference=f"retention-{warned_on}",
                note=f"Inactive since {last_active}; warned on {warned_on}; no activity since.",
            )
        except Exception as exc:
            # One person's failure leaves them for the next run; the others are erased.
            log.warning(
                "retention erasure of artisan %s failed: %s", artisan_id, type(exc).__name__
            )
            failures.append(artisan_id)
            return False
        return True

    async def fetch_cancelled() -> list[str]:
        async with sessions() as session:
            return await repo.artisans_active_since_warning(session, batch)

    async def fetch_due() -> list[str]:
        async with sessions() as session:
            return await repo.artisans_due_for_erasure(session, now, batch)

    async def fetch_inactive() -> list[str]:
        async with sessions() as session:
            return await repo.artisans_to_warn(session, active_before, lease_cut, batch)

    cancelled = await _drain(fetch_cancelled, cancel, batch)
    erased = await _drain(fetch_due, erase, batch)
    warned = await _drain(fetch_inactive, warn, batch)
    async with sessions() as session:
        kept = await repo.count_inactive_kept_for_lease(session, active_before, lease_cut)
    return {
        "warned": warned,
        "erased": erased,
        "cancelled": cancelled + kept_after_warning,
        "kept_for_lease": kept,
        "failed": len(set(failures)),
    }


async def _unselected_applications(
    sessions: Sessions, now: datetime, p: Periods, batch: int
) -> Counts:
    cut = now - p.applications_after

    async def pseudonymise(application_id: str) -> bool:
        async with sessions() as session, session.begin():
            app = await repo.lock_unselected_application(session, application_id, cut)
            if app is None:
                return False
            app.project = privacy.ERASED_TEXT
            app.pseudonymised_at = now
            for d in await repo.decisions_of_applications(session, [app.id]):
                if d.actor_id == app.artisan_id and d.reason:
                    d.reason = privacy.ERASED_TEXT
            appeal = await repo.appeal_of_application(session, app.id)
            if appeal is not None:
                appeal.grounds = privacy.ERASED_TEXT
            lease = await repo.lease_of_application(session, app.id, for_update=True)
            # An offer never signed: the reason it ended may be the artisan's (declining).
            if lease is not None and lease.signed_at is None and lease.end_reason:
                lease.end_reason = privacy.ERASED_TEXT
            return True

    async def fetch() -> list[str]:
        async with sessions() as session:
            return await repo.unselected_application_ids(session, cut, batch)

    return {"pseudonymised": await _drain(fetch, pseudonymise, batch)}


# The bulk rules look before they write: on SQLite any write takes the database's lock, and
# a run at start-up with nothing to do should not contend with the requests.


async def _published_outbox(sessions: Sessions, now: datetime, p: Periods, batch: int) -> Counts:
    cut = now - p.outbox
    async with sessions() as session, session.begin():
        due = await repo.any_published_before(session, cut)
        return {"deleted": await prune_published(session, cut) if due else 0}


async def _privacy_requests(sessions: Sessions, now: datetime, p: Periods, batch: int) -> Counts:
    cut = now - p.privacy_requests
    async with sessions() as session, session.begin():
        due = await repo.any_privacy_request_before(session, cut)
        return {"deleted": await repo.delete_privacy_requests_before(session, cut) if due else 0}


async def _ended_leases(sessions: Sessions, now: datetime, p: Periods, batch: int) -> Counts:
    cut = p.contract_cut(now)
    async with sessions() as session, session.begin():
        due = await repo.any_old_lease_texts(session, cut)
        return {"cleared": await repo.clear_old_lease_texts(session, cut, now) if due else 0}


STEPS: tuple[tuple[str, Step], ...] = (
    (INACTIVE_ACCOUNTS, _inactive_accounts),
    (UNSELECTED_APPLICATIONS, _unselected_applications),
    (ENDED_LEASES, _ended_leases),
    (PRIVACY_REQUESTS, _privacy_requests),
    (PUBLISHED_OUTBOX, _published_outbox),
)


async def apply_retention(
    sessions: Sessions, now: datetime, periods: Periods | None = None, batch: int = 200
) -> RetentionReport:
    """One run of the retention job at `now`: every rule, each on its own (a failing rule is
    reported with its error's type, the others still run)."""
    periods = periods or Periods()
    runs: list[RetentionRuleRun] = []
    for name, step in STEPS:
        try:
            runs.append(
                RetentionRuleRun(rule=name, counts=await step(sessions, now, periods, batch))
            )
        except Exception as exc:
            log.warning("retention rule %s failed: %s", name, type(exc).__name__)
            runs.append(RetentionRuleRun(rule=name, counts={}, error=type(exc).__name__))
    report = RetentionReport(ran_at=now, rules=runs)
    log.info(
        "retention run: %s",
        "; ".join(f"{r.rule} {r.error or r.counts}" for r in runs),
    )
    return report


async def run_retention(
    sessions: Sessions, stop: asyncio.Event, periods: Periods, every: float
) -> None:
    """Background task of the lifespan: a run at start, then every `every` seconds (a process
    restarted more often than that still runs it), on leasing's clock."""
    while not stop.is_set():
        try:
            await apply_retention(sessions, utcnow(), periods)
        except Exception as exc:
            log.warning("retention job failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


__all__ = ["RULES", "Periods", "apply_retention", "rules", "run_retention"]
