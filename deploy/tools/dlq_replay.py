"""List and replay the dead letters of a service (topic `<service>.dlq`).

A consumer that cannot apply an event copies the record to its service's dead-letter topic with
headers `dlq_reason`, `dlq_consumer`, `dlq_source_topic`, `dlq_source_partition`,
`dlq_source_offset`, and records the event id in its inbox (`processed_events`, outcome
`dead_lettered`) so that it keeps going. Replaying one event therefore takes two steps, both
done here: delete that inbox row (only rows whose outcome is `dead_lettered`), then publish the
record again, unchanged (key, value, CloudEvents headers), on its source topic. Every consumer
group of that topic sees it again; the groups that had applied it skip it as a duplicate.

    # what is there (read-only)
    python deploy/tools/dlq_replay.py --bootstrap localhost:9094 list leasing
    # what a replay would do (dry run), then do it
    python deploy/tools/dlq_replay.py --bootstrap localhost:9094 replay leasing --offset 3
    python deploy/tools/dlq_replay.py --bootstrap localhost:9094 replay leasing --offset 3 --yes

The database URL is read from `<SERVICE>_DATABASE_URL` (set in the service's pods and compose
containers) or given with --database-url. docs/operations.md#dead-letters has the procedure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

DLQ_HEADERS = (
    "dlq_reason",
    "dlq_consumer",
    "dlq_source_topic",
    "dlq_source_partition",
    "dlq_source_offset",
    "dlq_value",
)
REPLAYED_FROM = "fabrique_replayed_from"


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, with its dlq_* notes read out."""

    topic: str
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    notes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_record(
        cls,
        topic: str,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes | None]],
    ) -> DeadLetter:
        kept = tuple((name, raw or b"") for name, raw in headers or ())
        notes = {
            name: raw.decode(errors="replace")
            for name, raw in kept
            if name.startswith("dlq_") or name.startswith("ce_") or name == REPLAYED_FROM
        }
        return cls(topic, offset, key, value, kept, notes)

    @property
    def event_id(self) -> str | None:
        return self.notes.get("ce_id") or None

    @property
    def event_type(self) -> str | None:
        return self.notes.get("ce_type") or None

    @property
    def consumer(self) -> str | None:
        return self.notes.get("dlq_consumer") or None

    @property
    def source_topic(self) -> str | None:
        return self.notes.get("dlq_source_topic") or None

    @property
    def withheld(self) -> bool:
        """A dead letter of a topic with personal data holds a pointer, not the record: the
        replay reads the record again from its source topic (a compacted one)."""
        return self.notes.get("dlq_value") == "withheld"

    def with_value(self, value: bytes) -> DeadLetter:
        return DeadLetter(self.topic, self.offset, self.key, value, self.headers, self.notes)

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original headers without this DLQ's notes, plus where the replay came from."""
        headers = [(n, v) for n, v in self.headers if n not in DLQ_HEADERS and n != REPLAYED_FROM]
        headers.append((REPLAYED_FROM, f"{self.topic}@{self.offset}".encode()))
        return headers

    def problem(self) -> str | None:
        """Why this record cannot be replayed as is, or None."""
        if not self.source_topic:
            return "no dlq_source_topic header"
        if not self.consumer:
            return "no dlq_consumer header"
        if not self.event_id:
            return "not a CloudEvent (no ce_id): fix the producer, there is nothing to replay"
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "key": self.key.decode(errors="replace") if self.key else None,
            "type": self.event_type,
            "id": self.event_id,
            "consumer": self.consumer,
            "source": (
                f"{self.source_topic}[{self.notes.get('dlq_source_partition')}]"
                f"@{self.notes.get('dlq_source_offset')}"
            ),
            "reason": self.notes.get("dlq_reason"),
            "value": "withheld (read from the source topic)" if self.withheld else "kept",
            "replayed_from": self.notes.get(REPLAYED_FROM),
        }


def select(
    letters: Sequence[DeadLetter],
    *,
    offsets: Sequence[int] = (),
    everything: bool = False,
    consumer: str | None = None,
    event_type: str | None = None,
) -> list[DeadLetter]:
    """The dead letters a replay is asked for: given offsets, or all, narrowed by filters."""
    if not offsets and not everything:
        raise ValueError("say which records: --offset N (repeatable) or --all")
    chosen = [d for d in letters if everything or d.offset in set(offsets)]
    missing = sorted(set(offsets) - {d.offset for d in letters})
    if missing:
        raise ValueError(f"no record at offset(s) {missing} in the dead-letter topic")
    if consumer:
        chosen = [d for d in chosen if d.consumer == consumer]
    if event_type:
        chosen = [d for d in chosen if d.event_type == event_type]
    return chosen


async def read_dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every record of the topic from its beginning to its current end (read-only, no group)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [
        p["partition"] for t in described if t.get("error_code") == 0 for p in t["partitions"]
    ]
    if not partitions:
        raise SystemExit(f"topic {topic!r} does not exist on {bootstrap}")
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if ends[tp] > await consumer.position(tp)}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                letters += [
                    DeadLetter.from_record(topic, r.offset, r.key, r.value, r.headers)
                    for r in records
                    if r.offset < ends[tp]
                ]
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return sorted(letters, key=lambda d: d.offset)


async def forget_dead_lettered(database_url: str, letters: Sequence[DeadLetter]) -> int:
    """Delete the inbox rows that mark these events dead-lettered; return how many went."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    deleted = 0
    try:
        async with engine.begin() as conn:
            for letter in letters:
                result = await conn.execute(
                    text(
                        "DELETE FROM processed_events WHERE consumer = :consumer "
                        "AND event_id = :event_id AND outcome = 'dead_lettered'"
                    ),
                    {"consumer": letter.consumer, "event_id": letter.event_id},
                )
                deleted += result.rowcount or 0
    finally:
        await engine.dispose()
    return deleted


async def resolve_withheld(
    bootstrap: str, letters: Sequence[DeadLetter]
) -> tuple[list[DeadLetter], list[DeadLetter]]:
    """The letters with their values, those withheld read again from their source partition
    at their offset; and those whose record is no longer there — compacted away because a newer
    record of the same key (a later profile, or the person's erasure) superseded it: nothing to
    replay, the newer record stands."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    ready = [d for d in letters if not d.withheld]
    gone: list[DeadLetter] = []
    withheld = [d for d in letters if d.withheld]
    if not withheld:
        return ready, gone
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        for letter in withheld:
            tp = TopicPartition(
                letter.source_topic or "", int(letter.notes.get("dlq_source_partition", "-1"))
            )
            wanted = int(letter.notes.get("dlq_source_offset", "-1"))
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
            found = None
            if 0 <= wanted < end:
                consumer.seek(tp, wanted)
                batch = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
                records = batch.get(tp, [])
                found = records[0] if records and records[0].offset == wanted else None
            if found is None or found.value is None:
                gone.append(letter)
            else:
                ready.append(letter.with_value(found.value))
    finally:
        await consumer.stop()
    return sorted(ready, key=lambda d: d.offset), gone


async def republish(bootstrap: str, letters: Sequence[DeadLetter]) -> None:
    """Publish each record again on its source topic (idempotent producer, acks=all)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="dlq-replay",
        enable_idempotence=True,
        acks="all",
    )
    await producer.start()
    try:
        for letter in letters:
            assert letter.source_topic is not None
            await producer.send_and_wait(
                letter.source_topic,
                value=letter.value,
                key=letter.key,
                headers=letter.replay_headers(),
            )
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap, host:port")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="print every dead letter of a service as JSON lines")
    listing.add_argument("service")
    replay = sub.add_parser("replay", help="replay dead letters (dry run without --yes)")
    replay.add_argument("service")
    replay.add_argument("--offset", type=int, action="append", default=[])
    replay.add_argument("--all", action="store_true", help="every record of the topic")
    replay.add_argument("--consumer", help="only records this consumer group dead-lettered")
    replay.add_argument("--type", dest="event_type", help="only events of this ce_type")
    replay.add_argument("--database-url", help="default: $<SERVICE>_DATABASE_URL")
    replay.add_argument("--yes", action="store_true", help="do it (otherwise only show the plan)")
    args = parser.parse_args(argv)

    topic = f"{args.service}.dlq"
    letters = asyncio.run(read_dead_letters(args.bootstrap, topic))
    if args.command == "list":
        for letter in letters:
            print(json.dumps(letter.describe(), ensure_ascii=False))
        print(f"{len(letters)} record(s) in {topic}", file=sys.stderr)
        return 0

    try:
        chosen = select(
            letters,
            offsets=args.offset,
            everything=args.all,
            consumer=args.consumer,
            event_type=args.event_type,
        )
    except ValueError as exc:
        parser.error(str(exc))
    problems = [(d, d.problem()) for d in chosen if d.problem()]
    for letter, problem in problems:
        print(f"offset {letter.offset}: cannot replay: {problem}", file=sys.stderr)
    chosen = [d for d in chosen if not d.problem()]
    chosen, superseded = asyncio.run(resolve_withheld(args.bootstrap, chosen))
    for letter in superseded:
        print(
            f"offset {letter.offset}: {letter.event_type} {letter.event_id}: its record is no "
            f"longer on {letter.source_topic} (superseded by a newer record of the same key, or "
            "erased): nothing to replay",
            file=sys.stderr,
        )
    for letter in chosen:
        print(
            f"offset {letter.offset}: {letter.event_type} {letter.event_id} -> "
            f"{letter.source_topic} (inbox row of {letter.consumer} to delete)"
        )
    if not chosen:
        print("nothing to replay", file=sys.stderr)
        return 1 if problems else 0
    if not args.yes:
        print("dry run: add --yes to replay", file=sys.stderr)
        return 0
    database_url = args.database_url or os.environ.get(f"{args.service.upper()}_DATABASE_URL")
    if not database_url:
        parser.error(f"--database-url or ${args.service.upper()}_DATABASE_URL is needed")
    forgotten = asyncio.run(forget_dead_lettered(database_url, chosen))
    asyncio.run(republish(args.bootstrap, chosen))
    print(f"replayed {len(chosen)} record(s); {forgotten} inbox row(s) deleted")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
