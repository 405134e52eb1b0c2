"""What inventory consumes: leasing's lease events (wired in by the leasing work)."""

from __future__ import annotations

from fabkit.runtime import ConsumerSpec
from inventory.settings import InventorySettings


def consumer_specs(settings: InventorySettings) -> list[ConsumerSpec]:
    return []
