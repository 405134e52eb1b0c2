"""Create every topic of deploy/topics.json on a broker (the compose `kafka-topics` one-shot).

Uses fabkit's ensure_topics, the code the local launcher runs: missing topics are created with
their partitions, retention.ms and declared configs; existing ones keep their partitions and get
their declared configs (e.g. a compacted topic) if they differ. Retries while the broker
starts, then prints the partition count of each topic and checks it matches the file.

    python create_topics.py --bootstrap kafka:9092 deploy/topics.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from fabkit.localstack.kafka import TopicSpec, ensure_topics_sync, load_topic_specs


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t.get("partitions") or []) for t in described}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topics_file")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    specs: list[TopicSpec] = load_topic_specs(args.topics_file)
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            created = ensure_topics_sync(args.bootstrap, specs, timeout=30.0)
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                print(f"could not create the topics: {exc}", file=sys.stderr)
                return 1
            print(f"broker not ready ({type(exc).__name__}: {exc}); retrying", flush=True)
            time.sleep(2)
    counts = asyncio.run(partition_counts(args.bootstrap, [s.name for s in specs]))
    wrong = []
    for spec in specs:
        mark = "created" if spec.name in created else "exists"
        print(f"{spec.name:<34} partitions={counts.get(spec.name)} ({mark})", flush=True)
        if counts.get(spec.name) != spec.partitions:
            wrong.append(
                f"{spec.name}: {counts.get(spec.name)} partitions, file says {spec.partitions}"
            )
    if wrong:
        # Kafka never lowers a partition count; raising one reorders keys. A human decides.
        print("topics differ from deploy/topics.json:\n  " + "\n  ".join(wrong), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
