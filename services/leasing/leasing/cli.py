"""Leasing admin commands: migrate, seed demo artisans, get a token from the identity provider."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from fabkit.auth import Principal, Role
from fabkit.db import make_engine, make_session_factory
from fabkit.errors import ProblemError
from fabkit.migrations import upgrade
from fabkit.oidc import add_token_command, run_token_command
from leasing.domain import Label, LegalForm
from leasing.events.published import emit
from leasing.schemas import ArtisanCreate
from leasing.service import artisans
from leasing.settings import LeasingSettings

MIGRATIONS = Path(__file__).with_name("migrations")


def demo_user_id(username: str) -> str:
    """The fixed id (``sub``) of a realm demo account (deploy/keycloak/demo-directory.json)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:fabrique:user:{username}"))


# Invented businesses with valid (Luhn) but fictitious SIRETs, each the profile of a demo
# account of the realm (log in as it with the demo password, docs/identity.md).
DEMO_ARTISANS = [
    (
        "camille.roux",
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
    ),
    (
        "malik.benali",
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
    ),
]


def migrate(settings: LeasingSettings) -> None:
    upgrade(MIGRATIONS, settings.database_url)


async def seed(settings: LeasingSettings) -> list[dict[str, Any]]:
    """Register the demo artisans (once), each under its demo account's id; returns them with
    the username to log in with (no token: the identity provider issues them)."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    out = []
    try:
        for username, data in DEMO_ARTISANS:
            account = Principal(demo_user_id(username), Role.ARTISAN, email_verified=True)
            try:
                written = await artisans.register_artisan(sessions, account, data)
                body = written.body
            except ProblemError as exc:
                if exc.status != 409:
                    raise
                body = (await artisans.get_artisan_by_siret(sessions, data.siret)).model_dump(
                    mode="json"
                )
            out.append({"artisan": body, "login": username})
    finally:
        await engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leasing.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    sub.add_parser("seed", help="register the two demo artisans' profiles (once)")
    add_token_command(sub)
    args = parser.parse_args(argv)
    settings = LeasingSettings()
    emit.bind_source(settings.event_source)

    if args.command == "migrate":
        migrate(settings)
    elif args.command == "seed":
        print(json.dumps(asyncio.run(seed(settings)), ensure_ascii=False))
    elif args.command == "token":
        return run_token_command(args, settings.oidc_issuer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
