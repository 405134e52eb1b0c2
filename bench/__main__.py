"""`python -m bench`: run the benchmarks and rewrite docs/benchmarks.md.

    python -m bench -n 3000 --repeats 3               # everything (make bench), ~15 minutes
    python -m bench --only latency,api                 # some of them; prints, no doc rewrite

Sections: pipeline (row 5, own broker), matching (row 4, no broker), then on one platform
started like `fabrique-stack run`: latency (row 1), api and memory (rows 3 and 6), fanout
(row 2, last: a fan-out that times out leaves deliveries in flight), portal (section 8: the
board page against the same inventory search, and its first paint in Chromium); replicas (section 9, only when
named: `--only replicas [--quick]`, its own PostgreSQL platform, one and two processes of each
consumer). Every run writes its raw
figures to .run/bench/results.json; only a full run rewrites docs/benchmarks.md (or give
--output).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import machine, say

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / ".run" / "bench" / "results.json"
SECTIONS = ["pipeline", "matching", "latency", "api", "memory", "portal", "fanout", "rebalance"]
PLATFORM_SECTIONS = {"latency", "api", "memory", "portal", "fanout"}
# Run only when named in --only (their own platform, not part of a full run).
OPTIONAL_SECTIONS = ["replicas"]


async def run_platform(args: argparse.Namespace, only: set[str], work: Path) -> dict[str, Any]:
    from bench import alerts, api, portal, stack

    out: dict[str, Any] = {}
    rates = [args.low_rate, args.rate] if args.low_rate else [args.rate]
    latency_units = int(args.repeats * sum(rates) * args.seconds) if "latency" in only else 0
    fanout_units = args.fanout_repeats if "fanout" in only else 0
    say("platform: starting broker and services")
    s = await stack.start(work, database=args.database)
    try:
        await stack.seed_inventory(s, args.units, latency_units, fanout_units)
        if only & {"latency", "fanout"}:
            await stack.seed_artisans(s, args.artisans)
            await stack.seed_subscriptions(s, args.subscriptions)
        settled = await stack.settle(s)
        s.seeding["settle_s"] = settled
        say(f"platform: seeded {json.dumps(s.seeding)}")
        out["seeding"] = s.seeding
        out["idle_rss_mib"] = {
            name: stack.rss_mib(svc.proc.pid)
            for name, svc in s.platform.services.items()
            if svc.proc is not None
        }
        if "latency" in only:
            say(f"latency: {', '.join(f'{r:g}/s' for r in rates)} x {args.seconds:g} s")
            out["latency"] = await _section(
                alerts.run_latency(s, rates=rates, seconds=args.seconds, repeats=args.repeats)
            )
        if only & {"api", "memory"}:
            say("api: unit search vs bare FastAPI")
            out["api"] = await _section(
                api.run(s, repeats=args.repeats, seconds=args.api_seconds, pin_cpus=not args.no_pin)
            )
        if "portal" in only:
            say("portal: the board page vs the same inventory search; first contentful paint")
            out["portal"] = await _section(
                portal.run(
                    s,
                    repeats=args.repeats,
                    seconds=args.api_seconds,
                    pin_cpus=not args.no_pin,
                    fcp_loads=args.fcp_loads,
                )
            )
        if "fanout" in only:
            say(f"fanout: one vacancy to {args.subscriptions} webhooks")
            out["fanout"] = await _section(
                alerts.run_fanout(s, repeats=args.fanout_repeats, timeout=args.fanout_timeout)
            )
    finally:
        await s.close()
    return out


async def _section(coro: Any) -> dict[str, Any]:
    """A section's results, or its error: one failing section does not lose the others."""
    try:
        return await coro  # type: ignore[no-any-return]
    except Exception as exc:
        say(f"  FAILED: {type(exc).__name__}: {exc}")
        return {"error": "".join(traceback.format_exception(exc))[-3000:]}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("-n", type=int, default=3000, help="pipeline: events per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help=f"comma-separated, among {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, default=None, help=f"default {DOC} (full runs)")
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--artisans", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="latency: vacancies/s")
    parser.add_argument(
        "--low-rate", type=float, default=5.0, help="latency: a light-load rate too (0: none)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="latency: seconds per rate")
    parser.add_argument("--fanout-repeats", type=int, default=1)
    parser.add_argument("--fanout-timeout", type=float, default=120.0)
    parser.add_argument("--api-seconds", type=float, default=6.0)
    parser.add_argument("--fcp-loads", type=int, default=10, help="portal: page loads per median")
    parser.add_argument(
        "--no-pin", action="store_true", help="api: do not pin server / load generator"
    )
    parser.add_argument("--sustained-seconds", type=float, default=20.0)
    parser.add_argument(
        "--rebalance-repeats", type=int, default=2, help="rebalance: runs per case and setting"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also run latency, api and fanout on a PostgreSQL platform (report section 7)",
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="the services' databases for latency, api, memory and fanout (default: SQLite, "
        "as `make run`); the pipeline and matching sections always use SQLite",
    )
    parser.add_argument("--matching-sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    replicas = parser.add_argument_group("replicas (--only replicas: one and two processes)")
    replicas.add_argument("--quick", action="store_true", help="replicas: a smoke run")
    replicas.add_argument("--replicas-cell-units", type=int, default=2000)
    replicas.add_argument("--replicas-start-rate", type=float, default=10.0)
    replicas.add_argument("--replicas-max-rate", type=float, default=640.0)
    replicas.add_argument("--replicas-step-seconds", type=float, default=12.0)
    replicas.add_argument("--replicas-max-steps", type=int, default=7)
    parser.add_argument(
        "--render", type=Path, default=None, help="re-render the doc from a results.json"
    )
    args = parser.parse_args()
    if args.render is not None:
        from bench.report import render

        saved = json.loads(args.render.read_text(encoding="utf-8"))
        (args.output or DOC).write_text(render(saved, saved["command"]), encoding="utf-8")
        print(f"written to {args.output or DOC}")
        return 0
    only = {x.strip() for x in args.only.split(",") if x.strip()} or set(SECTIONS)
    unknown = only - set(SECTIONS) - set(OPTIONAL_SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    full = only == set(SECTIONS)

    command = "python -m bench " + " ".join(sys.argv[1:]) if sys.argv[1:] else "python -m bench"
    results: dict[str, Any] = {
        "machine": machine.describe(),
        "command": command,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    results["machine"]["load_before"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fabrique-bench-") as tmp:
        work = Path(tmp)
        if "pipeline" in only:
            from bench import pipeline

            say("pipeline: outbox relay and consumer runner vs raw aiokafka")
            results["pipeline"] = asyncio.run(
                _section(pipeline.run(work, args.n, args.repeats, args.sustained_seconds))
            )
        if "matching" in only:
            from bench import matching

            say("matching: cost per vacancy vs number of saved searches")
            results["matching"] = asyncio.run(_section(matching.run(work, args.matching_sizes)))
        if "rebalance" in only:
            from bench import rebalance

            say("rebalance: a group's pause when a member is killed, restarted or stopped")
            results["rebalance"] = asyncio.run(
                _section(rebalance.run(work, args.rebalance_repeats))
            )
            if "error" not in results["rebalance"]:
                print(rebalance.render(results["rebalance"]), flush=True)
        if only & PLATFORM_SECTIONS:
            results["platform"] = asyncio.run(_section(run_platform(args, only, work)))
        if args.postgres and only & {"latency", "api", "fanout"}:
            # Rows 1–3 again on PostgreSQL, on a fresh platform (section 7 of the report).
            say("platform on PostgreSQL: rows 1-3 again")
            pg_args = argparse.Namespace(**{**vars(args), "database": "postgres"})
            pg_only = only & {"latency", "api", "fanout"}
            results["platform_postgres"] = asyncio.run(
                _section(run_platform(pg_args, pg_only, work / "postgres"))
            )
            if "error" not in results["platform_postgres"]:
                results["platform_postgres"]["repeats"] = args.repeats
        if "replicas" in only:
            from bench import replicas as replicas_bench

            say("replicas: one and two processes of each consumer, on PostgreSQL")
            quick = args.quick
            results["replicas"] = asyncio.run(
                _section(
                    replicas_bench.run(
                        work / "replicas",
                        subscriptions=1000 if quick else args.subscriptions,
                        artisans=20 if quick else args.artisans,
                        cell_units=300 if quick else args.replicas_cell_units,
                        fanout_timeout=60.0 if quick else args.fanout_timeout,
                        start_rate=args.replicas_start_rate,
                        max_rate=args.replicas_max_rate,
                        step_seconds=5.0 if quick else args.replicas_step_seconds,
                        max_steps=3 if quick else args.replicas_max_steps,
                    )
                )
            )
    results["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["elapsed_s"] = time.monotonic() - started
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print(f"raw results: {RESULTS} ({results['elapsed_s'] / 60:.1f} min)")
    output = args.output or (DOC if full else None)
    if output is None and only == {"portal"} and "portal" in results.get("platform", {}):
        # The portal section alone is spliced into the doc (its own run, its own machine line).
        from bench.report import splice_portal

        DOC.write_text(splice_portal(DOC.read_text(encoding="utf-8"), results), encoding="utf-8")
        print(f"portal section written to {DOC}")
    elif only == {"replicas"} and not args.quick and "ratios" in results.get("replicas", {}):
        # The replicas section alone, spliced into the doc (its own run and machine line; a
        # --quick smoke run only prints).
        from bench.replicas_report import splice

        doc = args.output or DOC
        doc.write_text(splice(doc.read_text(encoding="utf-8"), results), encoding="utf-8")
        print(f"replicas section written to {doc}")
    elif output is not None:
        from bench.report import carry_over, render

        before = output.read_text(encoding="utf-8") if output.exists() else ""
        output.write_text(carry_over(before, render(results, command)), encoding="utf-8")
        print(f"written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
