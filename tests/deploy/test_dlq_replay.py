"""deploy/tools/dlq_replay.py: reading dead letters, choosing them, and a real replay on the
platform's broker and inventory's database (inbox row deleted, record back on its topic)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sqlite3
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "dlq_replay", ROOT / "deploy" / "tools" / "dlq_replay.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def letter(tool: ModuleType, offset: int, **headers: str) -> Any:
    base = {
        "ce_id": f"evt-{offset}",
        "ce_type": "inventory.unit.vacancy_opened.v1",
        "ce_specversion": "1.0",
        "ce_source": "/fabrique/inventory",
        "dlq_reason": "KeyError: 'unit'",
        "dlq_consumer": "leasing",
        "dlq_source_topic": "inventory.unit.events",
        "dlq_source_partition": "2",
        "dlq_source_offset": "41",
    }
    base.update(headers)
    return tool.DeadLetter.from_record(
        "leasing.dlq",
        offset,
        b"unit-1",
        b'{"a": 1}',
        [(k, v.encode()) for k, v in base.items() if v],
    )


def test_replay_keeps_the_event_and_drops_the_dead_letter_notes(tool: ModuleType) -> None:
    record = letter(tool, 7)
    headers = dict(record.replay_headers())
    assert headers["ce_id"] == b"evt-7" and headers["ce_type"].endswith(b"vacancy_opened.v1")
    assert not [h for h in headers if h.startswith("dlq_")]
    assert headers["fabrique_replayed_from"] == b"leasing.dlq@7"
    assert record.describe()["source"] == "inventory.unit.events[2]@41"
    assert record.problem() is None
    assert "not a CloudEvent" in letter(tool, 8, ce_id="").problem()
    assert "dlq_source_topic" in letter(tool, 9, dlq_source_topic="").problem()


def test_select_by_offset_consumer_and_type(tool: ModuleType) -> None:
    letters = [
        letter(tool, 0),
        letter(tool, 1, dlq_consumer="other"),
        letter(tool, 2, ce_type="x.v1"),
    ]
    assert [d.offset for d in tool.select(letters, everything=True)] == [0, 1, 2]
    assert [d.offset for d in tool.select(letters, offsets=[2, 0])] == [0, 2]
    assert [d.offset for d in tool.select(letters, everything=True, consumer="leasing")] == [0, 2]
    assert [d.offset for d in tool.select(letters, everything=True, event_type="x.v1")] == [2]
    with pytest.raises(ValueError, match="--offset"):
        tool.select(letters)
    with pytest.raises(ValueError, match=r"\[5\]"):
        tool.select(letters, offsets=[5])


def test_a_dead_letter_replayed_on_the_platform(
    tool: ModuleType, live_platform: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """inventory dead-lettered an event: the replay deletes its inbox row and puts the record
    back on the source topic, unchanged but for the DLQ notes."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap = live_platform.broker.bootstrap
    inventory = live_platform.services["inventory"]
    database_url = inventory.env["INVENTORY_DATABASE_URL"]
    event_id = str(uuid.uuid4())
    # A topic no service of the platform consumes, so nothing else reacts to the replay.
    source = "notifications.delivery.events"
    headers = [
        ("ce_id", event_id.encode()),
        ("ce_type", b"notifications.delivery.test.v1"),
        ("ce_source", b"/tests"),
        ("ce_specversion", b"1.0"),
        ("dlq_reason", b"RuntimeError: boom"),
        ("dlq_consumer", b"inventory"),
        ("dlq_source_topic", source.encode()),
        ("dlq_source_partition", b"0"),
        ("dlq_source_offset", b"0"),
    ]

    async def dead_letter() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            sent = await producer.send_and_wait(
                "inventory.dlq", value=b'{"x": 1}', key=b"k-1", headers=headers
            )
        finally:
            await producer.stop()
        return sent.offset  # type: ignore[no-any-return]

    offset = asyncio.run(dead_letter())
    path = database_url.split("///", 1)[1]
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO processed_events (consumer, event_id, event_type, outcome, processed_at) "
            "VALUES ('inventory', ?, 'notifications.delivery.test.v1', 'dead_lettered', "
            "'2026-01-01 00:00:00')",
            (event_id,),
        )

    assert tool.main(["--bootstrap", bootstrap, "list", "inventory"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert any(item["id"] == event_id and item["offset"] == offset for item in listed)

    # Dry run: nothing changes.
    assert (
        tool.main(["--bootstrap", bootstrap, "replay", "inventory", "--offset", str(offset)]) == 0
    )
    assert "dry run" in capsys.readouterr().err
    with sqlite3.connect(path) as db:
        assert db.execute(
            "SELECT count(*) FROM processed_events WHERE event_id = ?", (event_id,)
        ).fetchone() == (1,)

    args = [
        "--bootstrap",
        bootstrap,
        "replay",
        "inventory",
        "--offset",
        str(offset),
        "--yes",
        "--database-url",
        database_url,
    ]
    assert tool.main(args) == 0
    assert "replayed 1 record(s); 1 inbox row(s) deleted" in capsys.readouterr().out
    with sqlite3.connect(path) as db:
        assert db.execute(
            "SELECT count(*) FROM processed_events WHERE event_id = ?", (event_id,)
        ).fetchone() == (0,)

    async def read_back() -> Any:
        consumer = AIOKafkaConsumer(
            source, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        try:
            async with asyncio.timeout(20):
                async for record in consumer:
                    if dict(record.headers).get("ce_id") == event_id.encode():
                        return record
        finally:
            await consumer.stop()

    record = asyncio.run(read_back())
    assert record.key == b"k-1" and record.value == b'{"x": 1}'
    replayed = dict(record.headers)
    assert replayed["fabrique_replayed_from"] == f"inventory.dlq@{offset}".encode()
    assert not [h for h in replayed if h.startswith("dlq_")]
