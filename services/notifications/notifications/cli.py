"""Notifications admin commands: migrate, issue a token (an artisan's, for demos)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fabkit.auth import Role
from fabkit.migrations import upgrade
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).with_name("migrations")


def migrate(settings: NotificationsSettings) -> None:
    upgrade(MIGRATIONS, settings.database_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifications.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    token = sub.add_parser("issue-token", help="print a bearer token")
    token.add_argument("--role", choices=[r.value for r in Role], default=Role.ARTISAN.value)
    token.add_argument(
        "--subject", required=True, help="the artisan id (leasing's) for an artisan token"
    )
    token.add_argument("--ttl-days", type=int, default=30)
    args = parser.parse_args(argv)
    settings = NotificationsSettings()

    if args.command == "migrate":
        migrate(settings)
    elif args.command == "issue-token":
        tokens = settings.token_service()
        print(tokens.issue(args.subject, Role(args.role), args.ttl_days * 24 * 3600))
    return 0


if __name__ == "__main__":
    sys.exit(main())
