"""Fabrique benchmarks: `make bench` (python -m bench) writes docs/benchmarks.md."""

from __future__ import annotations

import time

_STARTED = time.monotonic()


def say(message: str) -> None:
    """Progress on stdout, with the time since the benchmarks started."""
    elapsed = time.monotonic() - _STARTED
    print(f"[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}] {message}", flush=True)
