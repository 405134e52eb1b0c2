"""Portal commands: `migrate` (nothing to migrate: the portal owns no database; the launcher
runs one step per service) and `update-catalogs` (new messages into the .po files)."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="nothing to do: the portal keeps no database")
    sub.add_parser("update-catalogs", help="extract messages and merge them into every .po")
    args = parser.parse_args(argv)
    if args.command == "migrate":
        print("portal: no database, nothing to migrate")
    elif args.command == "update-catalogs":
        from portal.i18n import update_catalogs

        print(json.dumps(update_catalogs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
