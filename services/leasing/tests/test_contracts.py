"""Leasing's event contracts: JSON Schema snapshots and the platform's AsyncAPI document.

The same rules as inventory's (services/inventory/tests/test_contracts.py, whose
backward-compatibility detector is reused here): a snapshot equals its payload class, no
snapshot ever committed loses a property or sees one change type, and the AsyncAPI file
describes every leasing event on its channel with its key. The consumers on both sides
(inventory of lease events, leasing of unit events) only rely on types their producer
publishes.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from inventory.events.consumed import IGNORED_LEASE_TYPES
from inventory.events.handlers import lease_handlers
from inventory.events.published import UNIT_EVENT_TYPES
from inventory.settings import InventorySettings
from leasing.events.consumed import UNIT_TOPIC
from leasing.events.handlers import UNIT_HANDLERS, consumer_specs
from leasing.events.published import (
    ALL_PAYLOADS,
    APPLICATION_TOPIC,
    ARTISAN_TOPIC,
    CALL_TOPIC,
    DLQ_TOPIC,
    LEASE_TOPIC,
    PRIVACY_TOPIC,
    PROGRAMME_TOPIC,
    TOPIC_OF,
)
from leasing.settings import LeasingSettings

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "contracts"
ASYNCAPI = CONTRACTS / "asyncapi.yaml"
TOPICS = ROOT / "deploy" / "topics.json"
REGENERATE = (
    "Run `uv run python contracts/generate.py` and commit the snapshot. Inside a version only "
    "additive changes are allowed: a removed, renamed or retyped field needs a new event type "
    "(….v2) published alongside the old one."
)
PAYLOADS = {cls.event_type: cls for cls in ALL_PAYLOADS}
LEASING_TOPICS = {
    ARTISAN_TOPIC,
    APPLICATION_TOPIC,
    LEASE_TOPIC,
    PROGRAMME_TOPIC,
    CALL_TOPIC,
    PRIVACY_TOPIC,
}
KEYS = {
    ARTISAN_TOPIC: "ArtisanKey",
    APPLICATION_TOPIC: "ApplicationKey",
    LEASE_TOPIC: "LeaseUnitKey",
    PROGRAMME_TOPIC: "ProgrammeKey",
    CALL_TOPIC: "CallKey",
    PRIVACY_TOPIC: "ArtisanKey",
}


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


generate = _load("fabrique_contracts_generate", CONTRACTS / "generate.py")
# One backward-compatibility detector for the platform (and the git history reader with it).
compat = _load(
    "fabrique_inventory_contract_tests", ROOT / "services/inventory/tests/test_contracts.py"
)


# Snapshots -------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_snapshot_matches_the_payload_class(event_type: str) -> None:
    path = generate.snapshot_path(event_type)
    assert path.exists(), f"No snapshot for {event_type}: {path.relative_to(ROOT)}. {REGENERATE}"

    assert path.read_text(encoding="utf-8") == generate.render(PAYLOADS[event_type]), (
        f"The schema of {PAYLOADS[event_type].__qualname__} differs from "
        f"{path.relative_to(ROOT)}. {REGENERATE}"
    )


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_payload_keeps_every_field_of_its_snapshots(event_type: str) -> None:
    current = generate.snapshot(PAYLOADS[event_type])
    path = generate.snapshot_path(event_type)
    baselines = list(compat._committed_versions(event_type))
    if path.exists():
        baselines.insert(0, (str(path.relative_to(ROOT)), json.loads(path.read_text("utf-8"))))
    if not baselines:
        pytest.fail(f"No snapshot for {event_type}. {REGENERATE}")

    problems = [
        f"{where}: {problem}"
        for where, old in baselines
        for problem in compat.breaking_changes(old, current)
    ]

    assert not problems, (
        f"{PAYLOADS[event_type].__qualname__} ({event_type}) breaks its contract:\n  "
        + "\n  ".join(problems)
        + f"\n{REGENERATE}"
    )


def test_the_detector_sees_a_lease_event_losing_its_unit() -> None:
    current = generate.snapshot(PAYLOADS["leasing.lease.signed.v1"])
    trimmed = json.loads(json.dumps(current))
    del trimmed["$defs"]["LeaseSnapshot"]["properties"]["unit_id"]

    assert compat.breaking_changes(current, trimmed) == ["$.lease.unit_id: removed"]


def test_every_leasing_snapshot_belongs_to_a_published_type() -> None:
    orphans = sorted(
        p.stem for p in generate.SCHEMAS.glob("leasing.*.json") if p.stem not in PAYLOADS
    )

    assert not orphans, f"Snapshots without a payload class: {orphans}."


def test_the_generator_covers_leasing_and_every_snapshot_is_current() -> None:
    discovered = generate.payload_classes()

    assert {t: c for t, c in discovered.items() if t.startswith("leasing.")} == dict(
        sorted(PAYLOADS.items())
    )
    assert generate.stale_snapshots(discovered) == []


def test_event_types_are_versioned_frozen_and_routed() -> None:
    assert len(PAYLOADS) == len(ALL_PAYLOADS), "two payload classes share an event type"
    assert set(TOPIC_OF) == set(PAYLOADS)
    for event_type, cls in PAYLOADS.items():
        assert event_type.startswith("leasing."), event_type
        assert event_type.rsplit(".", 1)[-1].startswith("v"), f"{event_type} has no version"
        assert cls.model_config.get("frozen") is True, f"{cls.__qualname__} must be frozen"
        assert TOPIC_OF[event_type] in LEASING_TOPICS


def test_no_siret_leaves_leasing() -> None:
    for event_type in PAYLOADS:
        assert "siret" not in generate.render(PAYLOADS[event_type]).lower(), event_type


# Consumers on both sides ---------------------------------------------------------------------


def test_inventory_acts_on_or_ignores_every_lease_event_leasing_publishes() -> None:
    lease_types = {t for t, topic in TOPIC_OF.items() if topic == LEASE_TOPIC}
    handled = set(lease_handlers(InventorySettings(environment="test")))

    assert handled == {"leasing.lease.signed.v1", "leasing.lease.ended.v1"}
    assert handled | IGNORED_LEASE_TYPES == lease_types
    assert not handled & IGNORED_LEASE_TYPES


def test_leasing_handles_every_unit_event_inventory_publishes() -> None:
    assert set(UNIT_HANDLERS) == set(UNIT_EVENT_TYPES)
    (spec,) = consumer_specs(LeasingSettings(environment="test"))
    assert set(spec.topics) == {UNIT_TOPIC}
    assert set(spec.topics[UNIT_TOPIC].handlers) == set(UNIT_EVENT_TYPES)


# AsyncAPI --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    with ASYNCAPI.open(encoding="utf-8") as f:
        document = yaml.safe_load(f)
    assert isinstance(document, dict)
    return document


def _channels_by_address(asyncapi: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {ch["address"]: (cid, ch) for cid, ch in (asyncapi.get("channels") or {}).items()}


def _message(asyncapi: dict[str, Any], ref_or_message: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in ref_or_message:
        ref_or_message = compat._pointer(asyncapi, ref_or_message["$ref"])
    return ref_or_message


def test_leasing_topics_are_in_the_catalogue() -> None:
    topics = {t["name"]: t for t in json.loads(TOPICS.read_text("utf-8"))["topics"]}
    for topic in (*LEASING_TOPICS, DLQ_TOPIC):
        assert topics[topic]["owner"] == "leasing", topic
    assert topics[PROGRAMME_TOPIC]["retention_ms"] == -1, "programmes are kept forever"


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_asyncapi_describes_every_leasing_event(asyncapi: dict[str, Any], event_type: str) -> None:
    carriers = [
        (address, cid, key)
        for address, (cid, channel) in _channels_by_address(asyncapi).items()
        for key, ref in (channel.get("messages") or {}).items()
        if _message(asyncapi, ref).get("name") == event_type
    ]
    assert len(carriers) == 1, f"{event_type} must be on exactly one channel, found {carriers}"
    address, cid, key = carriers[0]
    assert address == TOPIC_OF[event_type]

    message = _message(asyncapi, asyncapi["channels"][cid]["messages"][key])
    assert message["payload"] == {"$ref": f"./schemas/{event_type}.json"}
    ce_type = [
        part["properties"]["ce_type"]["const"]
        for part in message["headers"]["allOf"]
        if "ce_type" in part.get("properties", {})
    ]
    assert ce_type == [event_type]
    assert message["bindings"]["kafka"]["key"] == {"$ref": f"#/components/schemas/{KEYS[address]}"}
    sent = [
        op_id
        for op_id, op in asyncapi["operations"].items()
        if op["action"] == "send"
        and op["channel"] == {"$ref": f"#/channels/{cid}"}
        and {"$ref": f"#/channels/{cid}/messages/{key}"} in op.get("messages", [])
    ]
    assert len(sent) == 1, f"exactly one send operation must publish {event_type}, found {sent}"


def test_asyncapi_has_no_stale_leasing_messages(asyncapi: dict[str, Any]) -> None:
    documented = {m.get("name") for m in asyncapi["components"]["messages"].values()}
    stale = sorted(n for n in documented if n and n.startswith("leasing.") and n not in PAYLOADS)

    assert not stale, f"asyncapi.yaml documents event types leasing no longer publishes: {stale}"


def test_the_lease_key_is_the_unit_id(asyncapi: dict[str, Any]) -> None:
    key = asyncapi["components"]["schemas"]["LeaseUnitKey"]
    assert "id of the leased unit" in key["description"]
    _, channel = _channels_by_address(asyncapi)[LEASE_TOPIC]
    assert "UNIT id" in channel["description"]


def test_both_consumers_are_documented(asyncapi: dict[str, Any]) -> None:
    receive = {
        op_id: op for op_id, op in asyncapi["operations"].items() if op["action"] == "receive"
    }
    lease_channel = _channels_by_address(asyncapi)[LEASE_TOPIC][0]
    unit_channel = _channels_by_address(asyncapi)["inventory.unit.events"][0]
    inventory = receive["inventoryReceivesLeaseEvents"]
    assert inventory["channel"] == {"$ref": f"#/channels/{lease_channel}"}
    assert len(inventory["messages"]) == 2
    leasing = receive["leasingReceivesUnitEvents"]
    assert leasing["channel"] == {"$ref": f"#/channels/{unit_channel}"}
    assert len(leasing["messages"]) == len(UNIT_EVENT_TYPES)
