"""Alembic environment of the leasing database."""

from fabkit.migrations import run_env
from leasing import models

run_env(models.SQLModel.metadata)
