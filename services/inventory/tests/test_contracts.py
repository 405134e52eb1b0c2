"""Inventory's event contracts: JSON Schema snapshots and the platform's AsyncAPI document.

A snapshot must equal the payload class's schema (regenerate after an additive change); no
snapshot, current or committed earlier, may lose a property or see one change type; and the
AsyncAPI file must describe every topic and every inventory event type.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from inventory.events.published import (
    ALL_PAYLOADS,
    DLQ_TOPIC,
    SITE_TOPIC,
    SURFACE_TOPIC,
    UNIT_EVENT_TYPES,
    UNIT_TOPIC,
)

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "contracts"
ASYNCAPI = CONTRACTS / "asyncapi.yaml"
TOPICS = ROOT / "deploy" / "topics.json"
REGENERATE = (
    "Run `uv run python contracts/generate.py` and commit the snapshot. Inside a version only "
    "additive changes are allowed: a removed, renamed or retyped field needs a new event type "
    "(….v2) published alongside the old one."
)
KEEP_FIELDS = (
    "Inside a version only additive changes are allowed, so regenerating the snapshot is not "
    "the fix: keep the field with its type, or publish the change as a new event type (….v2) "
    "alongside the old one."
)
PAYLOADS = {cls.event_type: cls for cls in ALL_PAYLOADS}
INVENTORY_TOPICS = {UNIT_TOPIC, SITE_TOPIC, SURFACE_TOPIC}


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fabrique_contracts_generate", CONTRACTS / "generate.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


# Backward compatibility ------------------------------------------------------------------------

Schema = dict[str, Any]


def _resolve(schema: Schema, root: Schema) -> Schema:
    seen = 0
    while "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), f"only local $ref are supported in snapshots, got {ref}"
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        schema, seen = target, seen + 1
        assert seen < 50, f"$ref cycle at {ref}"
    return schema


def _variants(schema: Schema, root: Schema) -> list[Schema]:
    """The alternatives a value may take (`anyOf`/`oneOf` flattened, `$ref` resolved)."""
    schema = _resolve(schema, root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return [v for alt in alternatives for v in _variants(alt, root)]
    if isinstance(schema.get("type"), list):
        return [{**schema, "type": t} for t in schema["type"]]
    return [schema]


def _kind(schema: Schema) -> str:
    kind = schema.get("type", "any")
    if "format" in schema:
        kind += f"({schema['format']})"
    return kind


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """What a consumer written against `old` would no longer find in `new` (empty if additive)."""
    problems: list[str] = []

    def compare(o: Schema, n: Schema, path: str) -> None:
        o_alts, n_alts = _variants(o, old), _variants(n, new)
        o_kinds, n_kinds = sorted({_kind(v) for v in o_alts}), sorted({_kind(v) for v in n_alts})
        if o_kinds != n_kinds:
            problems.append(
                f"{path}: type changed from {' | '.join(o_kinds)} to {' | '.join(n_kinds)}"
            )
            return
        o_by_kind = {_kind(v): v for v in o_alts}
        n_by_kind = {_kind(v): v for v in n_alts}
        for kind, o_alt in o_by_kind.items():
            n_alt = n_by_kind[kind]
            if kind == "object":
                o_props, n_props = o_alt.get("properties", {}), n_alt.get("properties", {})
                for name, o_prop in o_props.items():
                    if name not in n_props:
                        problems.append(f"{path}.{name}: removed")
                    else:
                        compare(o_prop, n_props[name], f"{path}.{name}")
                for name in sorted(set(o_alt.get("required", ())) - set(n_alt.get("required", ()))):
                    if name in n_props:
                        problems.append(f"{path}.{name}: no longer required")
            elif kind == "array" and "items" in o_alt:
                compare(o_alt["items"], n_alt.get("items", {}), f"{path}[]")

    compare(old, new, "$")
    return problems


def test_detector_accepts_additive_changes() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    new = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }

    assert breaking_changes(old, new) == []
    assert breaking_changes(old, old) == []


@pytest.mark.parametrize(
    ("old_prop", "new_prop", "expected"),
    [
        ({"type": "number"}, {"type": "string"}, "$.x: type changed from number to string"),
        (
            {"anyOf": [{"type": "number"}, {"type": "null"}]},
            {"type": "number"},
            "$.x: type changed from null | number to number",
        ),
        (
            {"type": "number"},
            {"anyOf": [{"type": "number"}, {"type": "null"}]},
            "$.x: type changed from number to null | number",
        ),
        (
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date"},
            "$.x: type changed from string(date-time) to string(date)",
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            {"type": "array", "items": {"type": "integer"}},
            "$.x[]: type changed from string to integer",
        ),
    ],
)
def test_detector_catches_retyped_fields(old_prop: Schema, new_prop: Schema, expected: str) -> None:
    old = {"type": "object", "properties": {"x": old_prop}}
    new = {"type": "object", "properties": {"x": new_prop}}

    assert breaking_changes(old, new) == [expected]


def test_detector_catches_removed_and_loosened_fields() -> None:
    old = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a", "b"],
    }
    new = {"type": "object", "properties": {"a": {"type": "string"}}, "required": []}

    assert breaking_changes(old, new) == ["$.b: removed", "$.a: no longer required"]


def test_detector_follows_refs_into_nested_models() -> None:
    def doc(unit_props: Schema) -> Schema:
        return {
            "$defs": {"Unit": {"type": "object", "properties": unit_props}},
            "type": "object",
            "properties": {"unit": {"$ref": "#/$defs/Unit"}},
        }

    old = doc({"unit_id": {"type": "string"}, "surface_m2": {"type": "number"}})
    new = doc({"unit_id": {"type": "string"}, "surface_m2": {"type": "integer"}, "extra": {}})
    gone = doc({"surface_m2": {"type": "number"}})

    assert breaking_changes(old, new) == ["$.unit.surface_m2: type changed from number to integer"]
    assert breaking_changes(old, gone) == ["$.unit.unit_id: removed"]


def test_detector_catches_a_real_payload_losing_a_field() -> None:
    current = generate.snapshot(PAYLOADS["inventory.unit.vacancy_opened.v1"])
    trimmed = json.loads(json.dumps(current))
    del trimmed["$defs"]["UnitSnapshot"]["properties"]["rent_eur_m2_year"]

    assert breaking_changes(current, trimmed) == ["$.unit.rent_eur_m2_year: removed"]


# Snapshots -------------------------------------------------------------------------------------


@functools.cache
def _committed_versions(event_type: str) -> list[tuple[str, Schema]]:
    """Every version of the snapshot committed to git, newest first (empty outside a git tree)."""
    rel = f"contracts/schemas/{event_type}.json"
    try:
        log = subprocess.run(
            ["git", "-C", str(ROOT), "log", "--format=%h", "--", rel],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    versions = []
    for commit in log.stdout.split() if log.returncode == 0 else []:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{commit}:{rel}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        if shown.returncode == 0:
            versions.append((f"{rel} at commit {commit}", json.loads(shown.stdout)))
    return versions


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_snapshot_matches_the_payload_class(event_type: str) -> None:
    path = generate.snapshot_path(event_type)
    assert path.exists(), f"No snapshot for {event_type}: {path.relative_to(ROOT)}. {REGENERATE}"

    on_disk = path.read_text(encoding="utf-8")

    assert on_disk == generate.render(PAYLOADS[event_type]), (
        f"The schema of {PAYLOADS[event_type].__qualname__} differs from "
        f"{path.relative_to(ROOT)}. {REGENERATE}"
    )


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_payload_keeps_every_field_of_its_snapshots(event_type: str) -> None:
    current = generate.snapshot(PAYLOADS[event_type])
    path = generate.snapshot_path(event_type)
    baselines = list(_committed_versions(event_type))
    if path.exists():
        baselines.insert(0, (str(path.relative_to(ROOT)), json.loads(path.read_text("utf-8"))))
    if not baselines:
        pytest.fail(f"No snapshot for {event_type}. {REGENERATE}")

    problems = [
        f"{where}: {problem}"
        for where, old in baselines
        for problem in breaking_changes(old, current)
    ]

    assert not problems, (
        f"{PAYLOADS[event_type].__qualname__} ({event_type}) breaks its contract:\n  "
        + "\n  ".join(problems)
        + f"\n{REGENERATE}"
    )


def test_every_snapshot_belongs_to_a_published_type() -> None:
    orphans = sorted(
        p.stem for p in generate.SCHEMAS.glob("inventory.*.json") if p.stem not in PAYLOADS
    )

    assert not orphans, (
        f"Snapshots without a payload class: {orphans}. Consumers may still rely on these types; "
        "retire a type deliberately (and delete its snapshot in the same change)."
    )


def test_generator_discovers_the_published_payloads() -> None:
    discovered = generate.payload_classes()
    mine = {t: cls for t, cls in discovered.items() if t.startswith("inventory.")}
    assert mine == dict(sorted(PAYLOADS.items()))
    assert generate.stale_snapshots(discovered) == []


def test_event_types_are_versioned_and_distinct() -> None:
    assert len(PAYLOADS) == len(ALL_PAYLOADS), "two payload classes share an event type"
    for event_type, cls in PAYLOADS.items():
        assert event_type.startswith("inventory."), event_type
        assert event_type.rsplit(".", 1)[-1].startswith("v"), f"{event_type} has no version"
        assert cls.model_config.get("frozen") is True, f"{cls.__qualname__} must be frozen"


# AsyncAPI ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    with ASYNCAPI.open(encoding="utf-8") as f:
        document = yaml.safe_load(f)
    assert isinstance(document, dict), "asyncapi.yaml is not a YAML mapping"
    return document


@pytest.fixture(scope="module")
def topics() -> dict[str, dict[str, Any]]:
    catalogue = json.loads(TOPICS.read_text(encoding="utf-8"))
    return {t["name"]: t for t in catalogue["topics"]}


def _channels_by_address(asyncapi: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {ch["address"]: (cid, ch) for cid, ch in (asyncapi.get("channels") or {}).items()}


def _pointer(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    target: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(target, dict), f"$ref {ref} goes through a non-object"
        assert part in target, f"$ref {ref} does not resolve"
        target = target[part]
    return target


def _message(asyncapi: dict[str, Any], ref_or_message: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in ref_or_message:
        ref_or_message = _pointer(asyncapi, ref_or_message["$ref"])
    return ref_or_message


def test_asyncapi_is_version_3(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"]
    assert asyncapi["info"]["version"]
    assert asyncapi["defaultContentType"] == "application/json"


def test_asyncapi_has_a_channel_for_every_topic(
    asyncapi: dict[str, Any], topics: dict[str, dict[str, Any]]
) -> None:
    channels = _channels_by_address(asyncapi)

    missing = sorted(set(topics) - set(channels))
    unknown = sorted(set(channels) - set(topics))

    assert not missing, f"contracts/asyncapi.yaml has no channel for topics {missing}"
    assert not unknown, f"contracts/asyncapi.yaml has channels for unknown topics {unknown}"
    assert len(channels) == len(asyncapi["channels"]), "two channels share an address"


def test_asyncapi_topic_settings_match_the_catalogue(
    asyncapi: dict[str, Any], topics: dict[str, dict[str, Any]]
) -> None:
    for address, (cid, channel) in _channels_by_address(asyncapi).items():
        kafka = channel.get("bindings", {}).get("kafka", {})
        assert kafka.get("partitions") == topics[address]["partitions"], cid
        retention = kafka.get("topicConfiguration", {}).get("retention.ms")
        assert retention == topics[address]["retention_ms"], cid
        assert channel.get("description"), f"channel {cid} needs a description"


def test_inventory_topics_are_in_the_catalogue(topics: dict[str, dict[str, Any]]) -> None:
    for topic in (*INVENTORY_TOPICS, DLQ_TOPIC):
        assert topics[topic]["owner"] == "inventory", topic


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_asyncapi_describes_every_inventory_event(
    asyncapi: dict[str, Any], event_type: str
) -> None:
    carriers = []
    for address, (cid, channel) in _channels_by_address(asyncapi).items():
        for key, ref in (channel.get("messages") or {}).items():
            if _message(asyncapi, ref).get("name") == event_type:
                carriers.append((address, cid, key))
    assert len(carriers) == 1, (
        f"{event_type} must be a message of exactly one channel of contracts/asyncapi.yaml, "
        f"found {carriers}"
    )
    address, cid, key = carriers[0]
    assert address in INVENTORY_TOPICS, f"{event_type} is on {address}"
    if event_type in UNIT_EVENT_TYPES:
        assert address == UNIT_TOPIC

    message = _message(asyncapi, asyncapi["channels"][cid]["messages"][key])
    assert message["payload"] == {"$ref": f"./schemas/{event_type}.json"}
    assert (CONTRACTS / "schemas" / f"{event_type}.json").exists()
    ce_type = [
        part["properties"]["ce_type"]["const"]
        for part in message["headers"]["allOf"]
        if "ce_type" in part.get("properties", {})
    ]
    assert ce_type == [event_type], "the message's ce_type header must name its event type"
    assert message["bindings"]["kafka"]["key"], "the Kafka key (aggregate id) must be described"

    sent = [
        op_id
        for op_id, op in asyncapi["operations"].items()
        if op["action"] == "send"
        and op["channel"] == {"$ref": f"#/channels/{cid}"}
        and {"$ref": f"#/channels/{cid}/messages/{key}"} in op.get("messages", [])
    ]
    assert len(sent) == 1, f"exactly one send operation must publish {event_type}, found {sent}"


def test_asyncapi_has_no_stale_inventory_messages(asyncapi: dict[str, Any]) -> None:
    documented = {m.get("name") for m in asyncapi["components"]["messages"].values()}
    stale = sorted(n for n in documented if n and n.startswith("inventory.") and n not in PAYLOADS)

    assert not stale, f"asyncapi.yaml documents event types inventory no longer publishes: {stale}"


def test_ce_headers_are_described(asyncapi: dict[str, Any]) -> None:
    headers = asyncapi["components"]["schemas"]["CloudEventHeaders"]

    assert set(headers["required"]) == {
        "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"
    }  # fmt: skip
    # Optional: the subject, and the trace context when the producer traces (fabkit.tracing).
    optional = {"ce_subject", "ce_traceparent", "ce_tracestate", "traceparent"}
    assert set(headers["properties"]) == set(headers["required"]) | optional
    assert headers["properties"]["ce_specversion"]["const"] == "1.0"


def test_operations_only_use_their_channel_messages(asyncapi: dict[str, Any]) -> None:
    for op_id, op in asyncapi["operations"].items():
        channel_ref = op["channel"]["$ref"]
        _pointer(asyncapi, channel_ref)
        for ref in op.get("messages", []):
            assert ref["$ref"].startswith(f"{channel_ref}/messages/"), (op_id, ref)


def test_every_reference_resolves(asyncapi: dict[str, Any]) -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref.startswith("#/"):
                    _pointer(asyncapi, ref)
                else:
                    assert (CONTRACTS / ref).exists(), f"{where}: {ref} does not exist"
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(asyncapi, "$")
