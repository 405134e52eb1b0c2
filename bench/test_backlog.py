"""The backlog detector and the rate ladder of bench/replicas.py (pure logic).

uv run --no-sync pytest bench/test_backlog.py -q
"""

from __future__ import annotations

import random

import pytest

from bench.backlog import growing, next_rate, slope, slope_half


def ramp(per_s: float, seconds: float = 12.0, every: float = 0.5, start: float = 0.0):
    return [(i * every, start + per_s * i * every) for i in range(int(seconds / every) + 1)]


def test_slope_is_least_squares() -> None:
    assert slope(ramp(7.0)) == pytest.approx(7.0)
    assert slope([(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]) == 0.0
    assert slope([(1.0, 3.0)]) == 0.0
    assert slope([]) == 0.0
    # Same instant twice: no slope rather than a division by zero.
    assert slope([(1.0, 3.0), (1.0, 9.0)]) == 0.0


def test_a_flat_backlog_is_not_growing_even_when_large() -> None:
    noisy = random.Random(7)
    flat = [(t, 800 + noisy.uniform(-150, 150)) for t, _ in ramp(0.0)]
    assert not growing(flat, arrivals_per_s=100)


def test_a_backlog_growing_faster_than_five_percent_of_arrivals_is_growing() -> None:
    assert growing(ramp(6.0), arrivals_per_s=100)
    assert not growing(ramp(4.0), arrivals_per_s=100)
    # At a low rate the floor (1 per s) decides, not 5 % of it.
    assert not growing(ramp(0.8), arrivals_per_s=5)
    assert growing(ramp(1.5), arrivals_per_s=5)


def test_only_the_second_half_counts() -> None:
    # A consumer waking up: the backlog climbs for the first half, then stays put.
    warm = [(t, min(t, 6.0) * 50) for t, _ in ramp(0.0)]
    assert slope(warm) > 5
    assert slope_half(warm) == 0.0
    assert not growing(warm, arrivals_per_s=50)
    # ...and the other way round: steady, then falling behind.
    late = [(t, max(0.0, t - 6.0) * 50) for t, _ in ramp(0.0)]
    assert growing(late, arrivals_per_s=50)
    assert not growing([], arrivals_per_s=50)


def test_the_ladder_doubles_then_bisects() -> None:
    assert next_rate([], [], start=10, max_rate=640) == 10
    assert next_rate([10, 20], [], start=10, max_rate=640) == 40
    assert next_rate([10, 20, 40], [80], start=10, max_rate=640) == 60
    assert next_rate([10, 20, 40, 60], [80], start=10, max_rate=640) == 70
    # Within 15 %: done.
    assert next_rate([10, 20, 40, 60, 70], [80], start=10, max_rate=640) is None


def test_the_ladder_stops_at_its_bounds() -> None:
    assert next_rate([10, 20, 40, 80, 160, 320], [], start=10, max_rate=640) == 640
    assert next_rate([10, 20, 40, 80, 160, 320, 640], [], start=10, max_rate=640) is None
    # Failing from the start: halve down to a quarter of it, then give up.
    assert next_rate([], [10], start=10, max_rate=640) == 5
    assert next_rate([], [10, 5], start=10, max_rate=640) == 2.5
    assert next_rate([], [10, 5, 2.5], start=10, max_rate=640) is None
