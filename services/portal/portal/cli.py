"""Portal commands: `migrate` (the portal's own database: web sessions and rate-limit
counters; the launcher runs one migrate step per service) and `update-catalogs` (new messages
into the .po files)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MIGRATIONS = Path(__file__).with_name("migrations")


def migrate(database_url: str) -> None:
    from fabkit.migrations import upgrade

    upgrade(MIGRATIONS, database_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the migrations of the portal's sessions database")
    sub.add_parser("update-catalogs", help="extract messages and merge them into every .po")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        from portal.settings import PortalSettings

        migrate(PortalSettings().database_url)
    elif args.command == "update-catalogs":
        from portal.i18n import update_catalogs

        print(json.dumps(update_catalogs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
