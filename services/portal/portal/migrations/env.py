"""Alembic environment of the portal database (web sessions and rate-limit counters)."""

from fabkit.migrations import run_env
from portal import models

run_env(models.SQLModel.metadata)
