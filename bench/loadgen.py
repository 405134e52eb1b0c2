"""HTTP load generator for the API benchmark (row 3), run as its own process.

    python -m bench.loadgen --url http://127.0.0.1:8001 --paths-file paths.txt \
        (--connections 32 | --rate 400) --seconds 8 --out result.json [--cpu 1]

Why not httpx: an httpx client spends more CPU per request than a bare FastAPI endpoint, so it
would measure itself. Why not wrk: it is not installed by bootstrap, and it cannot hold a
fixed rate (the p99 at half the peak rate needs an open loop). This is a bare HTTP/1.1 client
on asyncio streams over uvloop, with keep-alive connections opened before the clock starts;
it reports its own CPU use, so a run where the generator itself was the limit shows.

- closed loop (`--connections N`): N connections, each sends its next request as soon as the
  previous answer is read: the peak rate.
- open loop (`--rate R`): request i is due at t0 + i/R whatever happened to earlier ones; it
  waits for a free connection if none is (up to `--max-connections`), and its latency counts
  from when it was due, so queueing in the server is not hidden (no coordinated omission).

GET only; responses must carry Content-Length (FastAPI's do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RECONNECTS = 0


class Connection:
    """One keep-alive connection; one the server closed while idle (uvicorn closes them after
    5 s) is reopened and the request sent again, once."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 20
        )
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def get(self, request: bytes) -> int:
        global RECONNECTS
        try:
            return await self._get(request)
        except (asyncio.IncompleteReadError, ConnectionError):
            RECONNECTS += 1
            self.close()
            await self.open()
        try:
            return await self._get(request)
        except (asyncio.IncompleteReadError, ConnectionError):
            return 0

    async def _get(self, request: bytes) -> int:
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError("response without content-length")
        end = lower.find(b"\r\n", at + 2)
        length = int(lower[at + 17 : end])
        if length:
            await self.reader.readexactly(length)
        return status


async def connect(host: str, port: int) -> Connection:
    return await Connection(host, port).open()


def requests_for(url: str, paths: list[str]) -> tuple[str, int, list[bytes]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    return (
        host,
        port,
        [
            f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n"
            f"User-Agent: fabrique-bench\r\n\r\n".encode()
            for p in paths
        ],
    )


def summary(latencies: list[float], statuses: dict[int, int], seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)

    def q(p: float) -> float:
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, int(p * len(ordered) + 0.999999) - 1))] * 1000

    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "requests": len(latencies),
        "ok": ok,
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": seconds,
        "rps": ok / seconds if seconds else 0.0,
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "max_ms": q(1.0),
    }


async def closed_loop(
    url: str, paths: list[str], connections: int, seconds: float, warmup: float
) -> dict[str, Any]:
    host, port, requests = requests_for(url, paths)
    conns = [await connect(host, port) for _ in range(connections)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    measuring = False
    deadline = 0.0

    async def worker(k: int, conn: Connection) -> None:
        i = k
        while True:
            started = time.monotonic()
            if started >= deadline:
                return
            status = await conn.get(requests[i % len(requests)])
            i += connections
            if measuring:
                latencies.append(time.monotonic() - started)
                statuses[status] = statuses.get(status, 0) + 1

    deadline = time.monotonic() + warmup
    await asyncio.gather(*(worker(k, c) for k, c in enumerate(conns)))
    measuring = True
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(worker(k, c) for k, c in enumerate(conns)))
    elapsed = time.monotonic() - started
    for c in conns:
        c.close()
    return summary(latencies, statuses, elapsed)


async def open_loop(
    url: str, paths: list[str], rate: float, seconds: float, max_connections: int
) -> dict[str, Any]:
    host, port, requests = requests_for(url, paths)
    idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
    opened = min(16, max_connections)
    for _ in range(opened):
        idle.put_nowait(await connect(host, port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = int(rate * seconds)
    t0 = time.monotonic() + 0.1

    async def one(i: int, due: float) -> None:
        nonlocal opened
        if idle.empty() and opened < max_connections:
            opened += 1
            conn = await connect(host, port)
        else:
            conn = await idle.get()
        status = await conn.get(requests[i % len(requests)])
        latencies.append(time.monotonic() - due)
        statuses[status] = statuses.get(status, 0) + 1
        idle.put_nowait(conn)

    tasks = []
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    while not idle.empty():
        idle.get_nowait().close()
    result = summary(latencies, statuses, elapsed)
    result["offered_rps"] = rate
    result["connections_used"] = opened
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--paths-file", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=0, help="closed loop")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop, requests/s")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--cpu", type=int, action="append", default=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.cpu:
        os.sched_setaffinity(0, set(args.cpu))
    paths = [p for p in args.paths_file.read_text(encoding="utf-8").splitlines() if p]
    import uvloop

    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic()
    if args.connections:
        result = uvloop.run(
            closed_loop(args.url, paths, args.connections, args.seconds, args.warmup)
        )
    else:
        result = uvloop.run(
            open_loop(args.url, paths, args.rate, args.seconds, args.max_connections)
        )
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - wall
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["loadgen_cpu_percent"] = round(100 * cpu / wall, 1)
    result["reconnects"] = RECONNECTS
    args.out.write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
