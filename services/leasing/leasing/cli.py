"""Leasing admin commands: migrate, seed demo artisans, issue tokens."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from fabkit.auth import Role
from fabkit.db import make_engine, make_session_factory
from fabkit.errors import ProblemError
from fabkit.migrations import upgrade
from leasing.domain import Label, LegalForm
from leasing.events.published import emit
from leasing.schemas import ArtisanCreate
from leasing.service import artisans
from leasing.settings import LeasingSettings

MIGRATIONS = Path(__file__).with_name("migrations")

# Invented businesses with valid (Luhn) but fictitious SIRETs.
DEMO_ARTISANS = [
    ArtisanCreate(
        display_name="Camille Roux",
        business_name="Roux Céramique",
        siret="90000000100009",
        trades=["ceramics"],
        business_created_on=date(2024, 3, 1),
        legal_form=LegalForm.MICRO_ENTREPRISE,
        labels=[Label.FABRIQUE_A_PARIS],
        contact_email="camille.roux@example.org",
    ),
    ArtisanCreate(
        display_name="Coopérative Bois Debout",
        business_name="Bois Debout SCOP",
        siret="90000000200007",
        trades=["cabinetmaking", "woodwork"],
        business_created_on=date(2022, 9, 15),
        legal_form=LegalForm.SCOP,
        labels=[Label.FABRIQUE_A_PARIS, Label.ESUS],
        contact_email="contact@bois-debout.example.org",
    ),
]


def migrate(settings: LeasingSettings) -> None:
    upgrade(MIGRATIONS, settings.database_url)


async def seed(settings: LeasingSettings) -> list[dict[str, Any]]:
    """Register the demo artisans (once) and return them with fresh tokens."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    tokens = settings.token_service()
    ttl = settings.artisan_token_ttl_days * 24 * 3600
    out = []
    try:
        for data in DEMO_ARTISANS:
            try:
                written = await artisans.register_artisan(sessions, settings, tokens, data)
                out.append(written.body)
            except ProblemError as exc:
                if exc.status != 409:
                    raise
                artisan = await artisans.get_artisan_by_siret(sessions, data.siret)
                out.append(
                    {
                        "artisan": artisan.model_dump(mode="json"),
                        "token": {"token": tokens.issue(artisan.id, Role.ARTISAN, ttl)},
                    }
                )
    finally:
        await engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leasing.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    sub.add_parser("seed", help="register two demo artisans (once) and print their tokens")
    token = sub.add_parser("issue-token", help="print a bearer token")
    token.add_argument("--role", choices=[r.value for r in Role], required=True)
    token.add_argument("--subject", default="admin", help="the artisan id for an artisan token")
    token.add_argument("--ttl-days", type=int, default=30)
    args = parser.parse_args(argv)
    settings = LeasingSettings()
    emit.bind_source(settings.event_source)

    if args.command == "migrate":
        migrate(settings)
    elif args.command == "seed":
        print(json.dumps(asyncio.run(seed(settings)), ensure_ascii=False))
    elif args.command == "issue-token":
        tokens = settings.token_service()
        print(tokens.issue(args.subject, Role(args.role), args.ttl_days * 24 * 3600))
    return 0


if __name__ == "__main__":
    sys.exit(main())
