"""Section 9 of docs/benchmarks.md (throughput with replicas) and its two summary rows, from
the results of bench/replicas.py; `splice` puts them in the doc without touching the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.replicas import SAMPLE_S

HEADING = "## 9. Throughput with replicas"
BEFORE = "## Findings: profiles and fixes"
ROWS = ("| 9a |", "| 9b |")


def _n(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _cpu(values: dict[str, float], names: Sequence[str], digits: int = 1) -> str:
    return ", ".join(f"{name} {values[name]:.{digits}f}" for name in names if name in values)


def _names(values: dict[str, float], wanted: Sequence[str]) -> list[str]:
    return [n for n in wanted if n in values]


PROCESSES = (
    "inventory", "leasing", "leasing-2", "notifications", "notifications-2", "portal", "broker",
    "postgres", "receiver", "client",
)  # fmt: skip


def _notifications_ms(fan: dict[str, Any]) -> float:
    per = fan["cpu_ms_per_delivery"]
    return sum(v for k, v in per.items() if k.startswith("notifications"))


def render_section(results: dict[str, Any]) -> str:
    r = results["replicas"]
    m = results["machine"]
    sizes = r["sizes"]
    f1, f2 = r["fanout"]["1"], r["fanout"]["2"]
    s1, s2 = r["sustained"]["1"], r["sustained"]["2"]
    q = r["ratios"]
    lines = [
        HEADING,
        "",
        f"Measured by `{results['command']}` — {m['date']}, "
        f"{results['elapsed_s'] / 60:.0f} minutes, {m['cpu']}; load average "
        f"{m['load_before']} before, {m['load_after']} after (1, 5, 15 min). One platform on "
        "PostgreSQL (replicas need a database every process shares), seeded as rows 1–2: "
        f"{sizes['subscriptions']:,} saved searches with a webhook to the bench receiver, "
        f"{sizes['artisans']} artisans, {sizes['cell_units']:,} cell units for the sustained "
        f"load ({r['webhooks_per_vacancy']:.2f} webhooks per vacancy). First one process of "
        "each service, then a second process of leasing and of notifications "
        "(`bench/stack.py` `start_replica`: the same settings on another port, same database, "
        "same consumer groups; both groups waited for to be Stable with two members). Method: "
        "`bench/replicas.py`.",
        "",
        "**Fan-out**: one PATCH opens a vacancy every search matches; from the PATCH returning "
        "to the last webhook at the receiver. A delivery worker runs in each notifications "
        "process; with two they share the delivery rows (`FOR UPDATE SKIP LOCKED`). CPU per "
        "delivery: each process's CPU time over the fan-out divided by the webhooks received "
        "(notifications' includes matching the vacancy and writing the delivery rows; "
        "PostgreSQL is the postmaster and all its backends; client is the bench process).",
        "",
        "| delivery workers | webhooks | first after | last after | deliveries/s | delivered "
        "by process | CPU ms per delivery | load (1 min) before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, f in (("1", f1), ("2", f2)):
        by = ", ".join(f"{k} {v:,.0f}" for k, v in f["delivered_by_process"].items())
        names = _names(f["cpu_ms_per_delivery"], PROCESSES)
        lines.append(
            f"| {key} | {f['received']:,}/{f['expected']:,} ({f['distinct']:,} distinct ids) | "
            f"{f['first_s']:.1f} s | {f['last_s']:.1f} s | {f['per_s']:,.0f} | {by} | "
            f"{_cpu(f['cpu_ms_per_delivery'], names, 3)} | "
            f"{f['load'][0].split()[0]} → {f['load'][1].split()[0]} |"
        )
    lines += [
        "",
        f"Ratio two / one: deliveries/s **{_n(q['fanout_per_s'], 2)}**, time to the last "
        f"webhook {_n(q['fanout_last_s'], 2)}. Notifications CPU per delivery (all its "
        f"processes): {_notifications_ms(f1):.2f} ms with one, {_notifications_ms(f2):.2f} ms "
        "with two.",
        "",
        "**Sustained vacancies/s**: the bench writes inventory's own `vacancy_opened` events "
        "(inventory's payload classes over the seeded units, the envelope and key its relay "
        "publishes) straight to `inventory.unit.events` at a steady rate (open loop) for "
        f"{sizes['step_seconds']:g} s a step, so the offered rate is not capped by one "
        "inventory process's PATCH (row 3). Backlogs sampled every "
        f"{SAMPLE_S:g} s: leasing's and notifications' consumer-group lag (the groups' "
        "committed offsets against the partition ends, from the broker: every replica's "
        "partitions count) and the webhooks not yet received. A backlog *grows* when its "
        "least-squares slope over the second half of the step exceeds 5 % of its arrival "
        "rate (at least 1 per s), or when it has not drained 20 s after the load stopped. "
        "Rates double from the start rate until a step fails, then are bisected to within 15 %.",
        "",
        "| replicas | offered /s | achieved /s | backlog | slope per s (leasing, "
        "notifications, webhooks) | max backlog | drained after | CPU % of a core | CPU ms "
        "per vacancy | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, sus in (("1", s1), ("2", s2)):
        for step in sus["steps"]:
            slopes = ", ".join(f"{v:+.1f}" for v in step["slope_per_s"].values())
            peaks = ", ".join(f"{v:,.0f}" for v in step["max_backlog"].values())
            drained = "never" if step["drained_s"] is None else f"{step['drained_s']:.1f} s"
            names = _names(step["cpu_percent"], PROCESSES)
            lines.append(
                f"| {key} | {step['offered_rate']:g} | {step['achieved_rate']:.1f} | "
                f"{'steady' if step['ok'] else '**grows**'} | {slopes} | {peaks} | {drained} | "
                f"{_cpu(step['cpu_percent'], names)} | "
                f"{_cpu(step['cpu_ms_per_vacancy'], names, 2)} | "
                f"{step['load'][1].split()[0]} |"
            )
    lines += [
        "",
        f"Highest rate with no growing backlog: **{_n(s1['highest_ok_rate'], 1)}/s** with one "
        f"replica (first failing {_n(s1['lowest_failing_rate'], 1)}/s), "
        f"**{_n(s2['highest_ok_rate'], 1)}/s** with two (first failing "
        f"{_n(s2['lowest_failing_rate'], 1)}/s): ratio two / one "
        f"**{_n(q['sustained_rate'], 2)}**.",
        "",
        *_reading(f1, f2, s1, s2, m.get("load_before", "")),
        "",
    ]
    return "\n".join(lines)


def summary_rows(results: dict[str, Any]) -> list[str]:
    r = results["replicas"]
    f1, f2 = r["fanout"]["1"], r["fanout"]["2"]
    s1, s2 = r["sustained"]["1"], r["sustained"]["2"]
    q = r["ratios"]
    subs = r["sizes"]["subscriptions"]
    return [
        f"| 9a | fan-out of one vacancy to {subs:,} webhooks, two delivery workers (PostgreSQL, "
        "one run) | "
        f"last after {f2['last_s']:.1f} s; {f2['per_s']:,.0f} deliveries/s; notifications "
        f"{_notifications_ms(f2):.2f} ms CPU per delivery | one delivery worker, same run | "
        f"{f1['last_s']:.1f} s; {f1['per_s']:,.0f}/s; {_notifications_ms(f1):.2f} ms | "
        f"{_n(q['fanout_per_s'], 2)} | (report: two cores, section 9) | |",
        "| 9b | sustained vacancies/s with no growing backlog, two replicas of leasing and "
        f"notifications | {_n(s2['highest_ok_rate'], 1)}/s | one replica each, same run | "
        f"{_n(s1['highest_ok_rate'], 1)}/s | {_n(q['sustained_rate'], 2)} | (report: two cores, "
        "section 9) | |",
    ]


def splice(doc: str, results: dict[str, Any]) -> str:
    """The doc with section 9 and rows 9a/9b replaced (or added: the section before the
    findings, the rows at the end of the summary table); nothing else changes."""
    section = render_section(results)
    start = doc.find(HEADING)
    if start >= 0:
        end = doc.find("\n## ", start + len(HEADING))
        doc = doc[:start] + section + ("\n" + doc[end + 1 :] if end >= 0 else "")
    else:
        at = doc.find(BEFORE)
        doc = (doc[:at] + section + "\n" + doc[at:]) if at >= 0 else doc + "\n" + section
    lines = doc.split("\n")
    rows = summary_rows(results)
    lines = [line for line in lines if not line.startswith(ROWS)]
    summary = next(i for i, line in enumerate(lines) if line == "## Summary")
    first = next(i for i in range(summary, len(lines)) if lines[i].startswith("|"))
    last = first
    while last + 1 < len(lines) and lines[last + 1].startswith("|"):
        last += 1
    lines[last + 1 : last + 1] = rows
    return "\n".join(lines)


def _total(values: dict[str, float]) -> float:
    """Every process's CPU but the load generator's (the bench process)."""
    return sum(v for k, v in values.items() if k != "client")


def _beside(load_before: str) -> str:
    """What else ran on the machine, from the 1-minute load average before the run."""
    first = float(load_before.split()[0]) if load_before else 0.0
    if first < 1.0:
        return ", and nothing else ran beside it (the load average before the run)"
    return ", and other work ran beside it (the load average above)"


def _reading(
    f1: dict[str, Any],
    f2: dict[str, Any],
    s1: dict[str, Any],
    s2: dict[str, Any],
    load_before: str = "",
) -> list[str]:
    """What two cores allow, said from the run's own CPU figures."""
    per_delivery = [_total(f["cpu_ms_per_delivery"]) for f in (f1, f2)]
    lines = [
        "**What two cores allow.** Every process of this run — the broker, PostgreSQL, the "
        "receiver, the load generator and now two processes of leasing and of notifications — "
        f"shares the same two cores (nothing is pinned){_beside(load_before)}. A second "
        "process adds no core: it can only take "
        "CPU the first one was not using (waits on PostgreSQL, the broker or the network), and "
        "it costs its own share (a second connection pool, a second poll loop, rebalances). "
        "So the ratios two / one above measure contention on this machine, not the design's "
        "ceiling. What scales to a bigger machine is the CPU per unit of work: for the "
        f"fan-out {per_delivery[0]:.2f} ms of CPU per delivery over all the platform's processes "
        f"with one worker, {per_delivery[1]:.2f} ms with two (notifications alone "
        f"{_notifications_ms(f1):.2f} and {_notifications_ms(f2):.2f} ms), so two cores could "
        f"carry at most about {2000 / max(per_delivery[0], 1e-9):,.0f} deliveries/s of this "
        "work were they the platform's alone, and each further core given to notifications "
        f"processes about {1000 / max(_notifications_ms(f1), 1e-9):,.0f} more (the delivery "
        "rows are shared with SKIP LOCKED: no coordination between workers beyond "
        "PostgreSQL's row locks).",
    ]
    best = [s.get("at_highest") for s in (s1, s2)]
    if all(best):
        per_vacancy = [_total(b["cpu_ms_per_vacancy"]) for b in best]  # type: ignore[index]
        lines[0] += (
            f" For sustained vacancies, at the highest steady rate: {per_vacancy[0]:.1f} ms of "
            f"CPU per vacancy over all processes with one replica, {per_vacancy[1]:.1f} ms with "
            f"two: two cores carry at most about {2000 / max(per_vacancy[0], 1e-9):,.0f} "
            "vacancies/s of it, and the consumers scale past that with cores as far as the "
            "topic's six partitions let members share it (a seventh member of a group idles)."
        )
    return lines
