"""Inventory admin commands: migrate, seed, get a token from the identity provider, create
landlords."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from fabkit.db import make_engine, make_session_factory
from fabkit.migrations import upgrade
from fabkit.oidc import add_token_command, run_token_command
from inventory.domain import LandlordKind
from inventory.events.published import emit
from inventory.schemas import LandlordCreate
from inventory.seed.demo import seed
from inventory.service.landlords import create_landlord
from inventory.settings import InventorySettings

MIGRATIONS = Path(__file__).with_name("migrations")


def migrate(settings: InventorySettings) -> None:
    upgrade(MIGRATIONS, settings.database_url)


async def _with_sessions(settings: InventorySettings, action):  # type: ignore[no-untyped-def]
    engine = make_engine(settings.database_url)
    try:
        return await action(make_session_factory(engine))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inventory.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    sub.add_parser("seed", help="load demo Paris sites and units (once)")
    add_token_command(sub)
    landlord = sub.add_parser("create-landlord", help="register a landlord and print it as JSON")
    landlord.add_argument("name")
    landlord.add_argument(
        "--kind", choices=[k.value for k in LandlordKind], default="social_landlord"
    )
    args = parser.parse_args(argv)
    settings = InventorySettings()
    emit.bind_source(settings.event_source)

    if args.command == "migrate":
        migrate(settings)
    elif args.command == "seed":
        result = asyncio.run(_with_sessions(settings, seed))
        print(json.dumps(result.__dict__))
    elif args.command == "token":
        return run_token_command(args, settings.oidc_issuer)
    elif args.command == "create-landlord":
        data = LandlordCreate(name=args.name, kind=LandlordKind(args.kind))
        written = asyncio.run(_with_sessions(settings, lambda s: create_landlord(s, data, None)))
        print(json.dumps(written.body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
