"""API: unit search with filters over 10,000 units (row 3), and memory under that load (row 6).

Targets, each a uvicorn process started the same way (fabkit's ServiceProcess, same flags):
inventory's `GET /v1/units` with filters, and the bare baselines of bench/bare.py. For each,
in each repetition: the peak rate (closed loop, 16 connections, `seconds` after 1 s of
warm-up), then an open loop at half that peak for `seconds` (p50 / p99 measured from when each
request was due). The load generator (bench/loadgen.py) is another process.

Two cores: with `pin=True` the server under test (every thread) runs on CPU 0 and the load
generator on CPU 1, so they never take turns on one core; the other services and the broker
are idle meanwhile and stay unpinned. The generator reports its own CPU use.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench import say
from bench.stack import ROOT, TRADES, RssSampler, Stack, pin, rss_mib, unpin
from fabkit.localstack.platform import ServiceProcess, ServiceSpec
from fabkit.localstack.ports import free_port

CONNECTIONS = 16


def search_paths(count: int = 64, seed: int = 3) -> list[str]:
    """Searches an artisan would run: a few arrondissements, a trade, surface and rent bounds,
    available units, cheapest first, one page of 20."""
    rng = random.Random(seed)
    paths = []
    for _ in range(count):
        query: list[tuple[str, Any]] = [("status", "available")]
        query += [
            ("arrondissement", a) for a in sorted(rng.sample(range(1, 21), rng.randint(1, 3)))
        ]
        if rng.random() < 0.8:
            query.append(("trade", rng.choice(TRADES)))
        if rng.random() < 0.5:
            query.append(("min_surface", rng.choice([30, 50, 100])))
        if rng.random() < 0.5:
            query.append(("max_rent", rng.choice([120, 150, 200])))
        query += [("sort", "rent"), ("limit", 20)]
        paths.append(f"/v1/units?{urlencode(query)}")
    return paths


def run_loadgen(
    work: Path, url: str, paths_file: Path, *, pin_cpu: int | None, **mode: Any
) -> dict[str, Any]:
    out = work / "loadgen-result.json"
    out.unlink(missing_ok=True)
    args = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        url,
        "--paths-file",
        str(paths_file),
        "--out",
        str(out),
    ]
    for key, value in mode.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    if pin_cpu is not None:
        args += ["--cpu", str(pin_cpu)]
    subprocess.run(args, cwd=ROOT, check=True, timeout=120)  # noqa: S603 - our interpreter
    return json.loads(out.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def start_bare(stack: Stack, page: bytes) -> ServiceProcess:
    page_file = stack.work / "bare-page.json"
    page_file.write_bytes(page)
    spec = ServiceSpec(
        name="bare", env_prefix="BARE_", app="bench.bare:create_app", port=0, migrate=[]
    )
    port = free_port()
    import os

    env = {**os.environ, "BENCH_BARE_PAGE_FILE": str(page_file)}
    service = ServiceProcess(spec, port, env, stack.work / "bare.log")
    service.start()
    return service


async def run(stack: Stack, *, repeats: int, seconds: float, pin_cpus: bool) -> dict[str, Any]:
    paths = search_paths()
    inventory = stack.url("inventory")
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
        page = await client.get(inventory + paths[0])
        page.raise_for_status()
        totals = [(await client.get(inventory + p)).json()["total"] for p in paths[:16]]
    paths_file = stack.work / "search-paths.txt"
    paths_file.write_text("\n".join(paths), encoding="utf-8")
    hello_file = stack.work / "hello-paths.txt"
    hello_file.write_text("/hello", encoding="utf-8")
    bare = start_bare(stack, page.content)
    assert bare.proc is not None
    targets = {
        "inventory": (inventory, paths_file, stack.platform.services["inventory"].proc.pid),  # type: ignore[union-attr]
        "bare_page": (bare.url, paths_file, bare.proc.pid),
        "bare_hello": (bare.url, hello_file, bare.proc.pid),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    service_pids = {name: s.proc.pid for name, s in stack.platform.services.items() if s.proc}
    rss_idle = {name: rss_mib(pid) for name, pid in service_pids.items()}
    rss_load: dict[str, float] = {}
    try:
        for r in range(repeats):
            for name, (url, file, pid) in targets.items():
                if pin_cpus:
                    pin(pid, [0])
                sampler = RssSampler(service_pids) if name == "inventory" else None
                if sampler:
                    sampler.__enter__()
                try:
                    peak = run_loadgen(
                        stack.work, url, file, pin_cpu=1 if pin_cpus else None,
                        connections=CONNECTIONS, seconds=seconds,
                    )  # fmt: skip
                    half = run_loadgen(
                        stack.work, url, file, pin_cpu=1 if pin_cpus else None,
                        rate=round(peak["rps"] / 2, 1), seconds=seconds, warmup=0,
                    )  # fmt: skip
                finally:
                    if sampler:
                        sampler.__exit__()
                        for k, v in sampler.peak.items():
                            rss_load[k] = max(rss_load.get(k, 0.0), v)
                    if pin_cpus:
                        unpin(pid)
                runs[name].append({"peak": peak, "half": half})
                say(
                    f"  api {name} #{r + 1}: peak {peak['rps']:.0f}/s (p99 {peak['p99_ms']:.1f} ms,"
                    f" loadgen {peak['loadgen_cpu_percent']}% CPU); at {half['offered_rps']:.0f}/s"
                    f" p99 {half['p99_ms']:.1f} ms"
                )
    finally:
        bare.stop()

    def med(name: str, phase: str, key: str) -> float:
        return statistics.median(x[phase][key] for x in runs[name])

    return {
        "paths": len(paths),
        "example": paths[0],
        "page_bytes": len(page.content),
        "matching_units": totals,
        "pinned": pin_cpus,
        "seconds": seconds,
        "runs": runs,
        "median": {
            name: {
                "peak_rps": med(name, "peak", "rps"),
                "peak_p99_ms": med(name, "peak", "p99_ms"),
                "half_rps": med(name, "half", "rps"),
                "half_p50_ms": med(name, "half", "p50_ms"),
                "half_p99_ms": med(name, "half", "p99_ms"),
                "loadgen_cpu_percent": med(name, "peak", "loadgen_cpu_percent"),
            }
            for name in runs
        },
        "rss_idle_mib": rss_idle,
        "rss_load_mib": rss_load,
    }
