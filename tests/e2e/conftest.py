"""End-to-end fixtures: the platform as real processes, started by the run command's launcher."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fabkit.auth import Role, TokenService
from fabkit.localstack.platform import Platform, start_platform
from fabkit.settings import DEV_JWT_SECRET
from fabkit.testing import fail_or_skip


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A fresh platform per test module (broker, seeded services on SQLite)."""
    try:
        started = start_platform(tmp_path_factory.mktemp("platform"), fixed_ports=False)
    except Exception as exc:
        fail_or_skip(f"cannot start the platform: {exc}")
    yield started
    started.stop()


@pytest.fixture(scope="session")
def tokens() -> TokenService:
    return TokenService(DEV_JWT_SECRET)


@pytest.fixture(scope="session")
def admin_token(tokens: TokenService) -> str:
    return tokens.issue("e2e-admin", Role.ADMIN)
