"""How long a consumer group's partitions stand still when one member goes away
(`python -m bench --only rebalance`).

Two members of one group (separate processes, each a `fabkit.kafka.make_consumer` consumer
that commits after each batch, as the services' runner does) share a 4-partition topic a
producer writes to every 20 ms per partition. One member is then
- killed (SIGKILL) and not restarted: its partitions wait for the survivor;
- killed and restarted at once under the same settings (a pod Kubernetes restarts);
- stopped gracefully (SIGTERM: the consumer is closed).
The pause is the time from the last record the member consumed to the first record of its
partitions consumed by another member or by its restart (the worst of its partitions).

Each case runs under several consumer settings: dynamic membership with the 10 s session
(before), static membership (group_instance_id, KIP-345) with 10 s and 6 s sessions, dynamic
with 6 s. The members' own clocks are the machine's wall clock (one machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import say

TOPIC_PARTITIONS = 4
PRODUCE_EVERY_S = 0.02


@dataclass(frozen=True)
class Config:
    name: str
    static: bool
    session_ms: int


CONFIGS = [
    Config("dynamic, 10 s session (before)", False, 10000),
    Config("static, 10 s session", True, 10000),
    Config("dynamic, 6 s session", False, 6000),
    Config("static, 6 s session", True, 6000),
]
CASES = ["kill", "kill_restart", "graceful"]


# --------------------------------------------------------------------------------------------
# one member: a process that prints each record it consumes
# --------------------------------------------------------------------------------------------


async def member(args: argparse.Namespace) -> None:
    from fabkit.kafka import make_consumer

    consumer = make_consumer(
        args.bootstrap,
        args.group,
        args.client_id,
        args.topic,
        group_instance_id=args.instance_id or None,
        session_timeout_ms=args.session_ms,
        heartbeat_interval_ms=1000,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    # A line per batch and partition, written at once (the process may be SIGKILLed).
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for tp, records in batch.items():
                line = f"{now:.4f} {tp.partition} {records[-1].offset} {len(records)}\n"
                os.write(fd, line.encode())
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
        os.close(fd)


def _spawn(bootstrap: str, topic: str, group: str, name: str, cfg: Config, out: Path) -> Any:
    argv = [
        sys.executable, "-m", "bench.rebalance", "member", "--bootstrap", bootstrap,
        "--topic", topic, "--group", group, "--client-id", f"bench-{name}",
        "--session-ms", str(cfg.session_ms), "--out", str(out),
        "--instance-id", f"{group}-{name}" if cfg.static else "",
    ]  # fmt: skip
    with out.with_suffix(".err").open("ab") as err:
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603


def _lines(path: Path) -> list[tuple[float, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((float(parts[0]), int(parts[1])))
    return rows


# --------------------------------------------------------------------------------------------
# one case under one configuration
# --------------------------------------------------------------------------------------------


async def _produce(bootstrap: str, topic: str, stop: asyncio.Event) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        while not stop.is_set():
            for p in range(TOPIC_PARTITIONS):
                await producer.send(topic, b"x", partition=p)
            await asyncio.sleep(PRODUCE_EVERY_S)
    finally:
        await producer.stop()


async def one(bootstrap: str, work: Path, cfg: Config, case: str) -> dict[str, Any]:
    from fabkit.localstack.kafka import TopicSpec, ensure_topics

    run = uuid.uuid4().hex[:8]
    topic, group = f"bench.rebalance.{run}", f"bench-rebalance-{run}"
    await ensure_topics(bootstrap, [TopicSpec(topic, TOPIC_PARTITIONS, 3_600_000)])
    folder = work / run
    folder.mkdir(parents=True)
    stop = asyncio.Event()
    producing = asyncio.create_task(_produce(bootstrap, topic, stop))
    a_out, b_out, r_out = folder / "a.txt", folder / "b.txt", folder / "a2.txt"
    procs = [_spawn(bootstrap, topic, group, "a", cfg, a_out)]
    procs.append(_spawn(bootstrap, topic, group, "b", cfg, b_out))
    try:
        # Both members consuming (the group settled on two), for a second.
        deadline = time.monotonic() + 60
        while True:
            recent = time.time() - 1.0
            a_parts = {p for t, p in _lines(a_out) if t > recent}
            b_parts = {p for t, p in _lines(b_out) if t > recent}
            shared = a_parts and b_parts and not a_parts & b_parts
            if shared and len(a_parts | b_parts) == TOPIC_PARTITIONS:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cfg.name}: the two members did not share {topic}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        a_parts = {p for t, p in _lines(a_out) if t > time.time() - 0.5}
        if case == "graceful":
            procs[0].send_signal(signal.SIGTERM)
            await asyncio.to_thread(procs[0].wait, 30)
        else:
            procs[0].kill()
            await asyncio.to_thread(procs[0].wait)
        if case == "kill_restart":
            procs.append(_spawn(bootstrap, topic, group, "a", cfg, r_out))
        last = max(t for t, p in _lines(a_out) if p in a_parts)
        # Wait until each of its partitions was consumed again, by anyone.
        deadline = time.monotonic() + 3 * cfg.session_ms / 1000 + 30
        resumed: dict[int, float] = {}
        while len(resumed) < len(a_parts):
            for path in (b_out, r_out):
                for t, p in _lines(path):
                    if p in a_parts and t > last and p not in resumed:
                        resumed[p] = t
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cfg.name}/{case}: partitions {a_parts} never resumed")
            await asyncio.sleep(0.1)
        by_restart = any(p for t, p in _lines(r_out) if p in a_parts and t > last)
        return {
            "pause_s": round(max(resumed.values()) - last, 2),
            "partitions": len(a_parts),
            "taken_by": "its restart" if by_restart else "the other member",
        }
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await producing
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                proc.kill()


async def run(work: Path, repeats: int = 2) -> dict[str, Any]:
    from fabkit.localstack.kafka import KafkaBroker

    broker = KafkaBroker(work / "kafka-rebalance")
    await asyncio.to_thread(broker.start)
    results: dict[str, Any] = {"repeats": repeats, "configs": {}}
    try:
        for cfg in CONFIGS:
            rows: dict[str, Any] = {}
            for case in CASES:
                runs = []
                for _ in range(repeats):
                    runs.append(await one(broker.bootstrap, work / "rebalance", cfg, case))
                pauses = [r["pause_s"] for r in runs]
                rows[case] = {
                    "median_s": round(statistics.median(pauses), 2),
                    "pauses_s": pauses,
                    "taken_by": sorted({r["taken_by"] for r in runs}),
                }
                say(f"  {cfg.name:<32} {case:<13} {pauses} s ({', '.join(rows[case]['taken_by'])})")
            results["configs"][cfg.name] = rows
    finally:
        await asyncio.to_thread(broker.stop)
    return results


def render(results: dict[str, Any]) -> str:
    """The table docs/benchmarks.md quotes (median of the repeats, each run in brackets)."""
    lines = [
        "| consumer settings | SIGKILL, no restart | SIGKILL, restarted at once | graceful stop |",
        "|---|---|---|---|",
    ]
    for name, rows in results["configs"].items():
        cells = []
        for case in CASES:
            row = rows[case]
            runs = ", ".join(f"{p:.1f}" for p in row["pauses_s"])
            cells.append(f"{row['median_s']:.1f} s ({runs})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rebalance")
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("member", help="one group member (started by the benchmark)")
    for flag in ("--bootstrap", "--topic", "--group", "--client-id", "--out"):
        m.add_argument(flag, required=True)
    m.add_argument("--instance-id", default="")
    m.add_argument("--session-ms", type=int, default=10000)
    r = sub.add_parser("run", help="the benchmark alone, printing its table")
    r.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.command == "member":
        asyncio.run(member(args))
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fabrique-rebalance-") as tmp:
        results = asyncio.run(run(Path(tmp), args.repeats))
    print(json.dumps(results, indent=1))
    print(render(results))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
