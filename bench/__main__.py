"""`python -m bench`: run every benchmark on the local stack and rewrite docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from bench import machine, pipeline

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def render(info: dict[str, str], pipe: dict[str, object], command: str) -> str:
    med = pipe["median"]  # type: ignore[index]
    n, repeats = pipe["n"], pipe["repeats"]

    def ratio(a: str, b: str) -> str:
        return f"{med[a] / med[b]:.2f}"  # type: ignore[index]

    return f"""# Benchmarks

Measured by `make bench` (`{command}`) — {info["date"]}.

| machine | |
|---|---|
| CPU | {info["cpu"]} |
| memory | {info["memory"]} |
| OS | {info["os"]} |
| Python | {info["python"]} |
| Java | {info["java"]} |
| broker | Apache Kafka 4.1.1, single KRaft node on loopback, started by the project's launcher |

Every figure has its baseline measured in the same run on the same broker, because these
machines are noisy: medians of {repeats} repetitions of {n} events (~1 KiB of JSON each, 500
distinct keys, 6 partitions). The load generator, the broker and the code under test share the
machine's cores; each phase runs alone (nothing else of the benchmark runs concurrently).

## Event pipeline

| what | events/s (median) | baseline | baseline events/s | ratio |
|---|---|---|---|---|
| outbox relay: committed rows → published, acknowledged, marked (SQLite) | {med["relay"]:.0f} | raw idempotent aiokafka producer, same events | {med["raw_p"]:.0f} | {ratio("relay", "raw_p")} |
| consumer runner: event applied + dedupe row committed, then offset committed (SQLite) | {med["runner"]:.0f} | raw aiokafka consumer reading the same volume | {med["raw_c"]:.0f} | {ratio("runner", "raw_c")} |

Raw figures (events/s per repetition):

```
{json.dumps(pipe["raw"], indent=1)}
```

What limits it: the relay sends a batch of up to 500 rows, waits for the broker's
acknowledgement of all of them, then marks them in one SQLite transaction, so its rate is about
half the raw producer's (the raw producer does not touch a database). The consumer runner applies
each partition's batch in one transaction (dedupe lookup, handler, processed-event rows) before
committing the offset — that is what makes consumption exactly-once in effect — so it is bounded
by SQLite writes, not by Kafka; the raw consumer only reads. A first version committed one
transaction per event and reached ~130 events/s; batching per partition raised it ~20-fold.

The other benchmarks of the benchmarks issue (vacancy → alert latency, fan-out, API search,
matching cost, memory) need the notifications service and are not measured yet.
"""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("-n", type=int, default=5000, help="events per repetition")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    info = machine.describe()
    with tempfile.TemporaryDirectory(prefix="fabrique-bench-") as work:
        pipe = asyncio.run(pipeline.run(Path(work), args.n, args.repeats))
    command = f"python -m bench -n {args.n} --repeats {args.repeats}"
    args.output.write_text(render(info, pipe, command), encoding="utf-8")
    print(json.dumps(pipe["median"], indent=1))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
