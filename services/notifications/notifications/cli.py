"""Notifications admin commands: migrate, get a token from the identity provider."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fabkit.migrations import upgrade
from fabkit.oidc import add_token_command, run_token_command
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).with_name("migrations")


def migrate(settings: NotificationsSettings) -> None:
    upgrade(MIGRATIONS, settings.database_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifications.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    add_token_command(sub)
    args = parser.parse_args(argv)
    settings = NotificationsSettings()

    if args.command == "migrate":
        migrate(settings)
    elif args.command == "token":
        return run_token_command(args, settings.oidc_issuer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
