"""Alembic environment of the notifications database."""

from fabkit.migrations import run_env
from notifications import models

run_env(models.SQLModel.metadata)
