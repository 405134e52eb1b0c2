"""Whether a backlog grows under a steady load, and the ladder of rates that finds the highest
sustained one (bench/replicas.py). Pure functions, unit-tested in bench/test_backlog.py."""

from __future__ import annotations

from collections.abc import Sequence


def slope(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (time, backlog) samples, per second (0 for fewer than two)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / var


def growing(
    samples: Sequence[tuple[float, float]],
    arrivals_per_s: float,
    *,
    tolerance: float = 0.05,
    floor: float = 1.0,
) -> bool:
    """Whether a backlog grows while the load is steady: the slope over the second half of the
    step (the first half is the ramp: batches, a consumer waking up) exceeds `tolerance` of the
    arrival rate (at least `floor` per second). A backlog that is large but flat is not
    growing: the consumers keep up, late by a constant."""
    if not samples:
        return False
    start, end = samples[0][0], samples[-1][0]
    half = [s for s in samples if s[0] >= start + (end - start) / 2]
    return slope(half) > max(floor, tolerance * arrivals_per_s)


def next_rate(
    passed: Sequence[float],
    failed: Sequence[float],
    *,
    start: float,
    max_rate: float,
    resolution: float = 0.15,
) -> float | None:
    """The next rate to try: `start`, then doubling while every step passes; once one fails,
    bisect between the highest pass and the lowest failure until they are within
    `resolution` (relative). None when done (or past `max_rate`, or failing at `start`/4)."""
    if not passed and not failed:
        return start
    if not failed:
        doubled = max(passed) * 2
        return doubled if doubled <= max_rate else None
    if not passed:
        halved = min(failed) / 2
        return halved if halved >= start / 4 else None
    low, high = max(passed), min(failed)
    if high <= low * (1 + resolution):
        return None
    return round((low + high) / 2, 1)


def slope_half(samples: Sequence[tuple[float, float]]) -> float:
    """The slope `growing` judges: over the second half of the samples."""
    if not samples:
        return 0.0
    start, end = samples[0][0], samples[-1][0]
    return slope([s for s in samples if s[0] >= start + (end - start) / 2])
