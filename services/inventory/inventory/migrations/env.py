"""Alembic environment of the inventory database."""

from fabkit.migrations import run_env
from inventory import models

run_env(models.SQLModel.metadata)
