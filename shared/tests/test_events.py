"""CloudEvents envelope: binary-mode Kafka mapping round-trips; poison records are refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

import pytest

from fabkit.events import (
    CloudEvent,
    EventPayload,
    InvalidEvent,
    encode_data,
    from_kafka,
    to_kafka_headers,
)

UNIT_ID = "0b8f2c1e-5d7a-4f0e-9a51-3c2d7e6b1a90"


class _Opened(EventPayload):
    event_type: ClassVar[str] = "test.unit.opened.v1"
    unit_id: str
    surface_m2: float
    trades: list[str]


def _event(**overrides: object) -> CloudEvent:
    fields: dict[str, object] = {
        "source": "/fabrique/inventory",
        "type": "inventory.unit.vacancy_opened.v1",
        "subject": UNIT_ID,
        "time": datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC),
        "data": {"unit_id": UNIT_ID, "surface_m2": 84.5, "site": "Hôtel industriel Berlier"},
    }
    fields.update(overrides)
    return CloudEvent(**fields)  # type: ignore[arg-type]


def _good_headers() -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-1"),
        ("ce_source", b"/fabrique/inventory"),
        ("ce_type", b"inventory.unit.updated.v1"),
        ("ce_time", b"2025-03-14T09:26:53+00:00"),
        ("content-type", b"application/json"),
    ]


def _without(name: str) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in _good_headers() if k != name]


def _replaced(name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(k, value if k == name else v) for k, v in _good_headers()]


# Round trip --------------------------------------------------------------------------------


def test_round_trip_keeps_every_attribute() -> None:
    event = _event()

    back = from_kafka(to_kafka_headers(event), encode_data(event))

    assert back == event
    assert back.time == datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
    assert back.data["site"] == "Hôtel industriel Berlier"


def test_every_attribute_but_data_is_a_ce_header() -> None:
    event = _event()

    headers = dict(to_kafka_headers(event))

    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": event.id.encode(),
        "ce_source": b"/fabrique/inventory",
        "ce_type": b"inventory.unit.vacancy_opened.v1",
        "ce_time": b"2025-03-14T09:26:53.589793+00:00",
        "ce_subject": UNIT_ID.encode(),
        "content-type": b"application/json",
    }
    assert len(to_kafka_headers(event)) == len(headers), "a header is repeated"


def test_data_and_key_stay_out_of_the_headers() -> None:
    event = _event()

    names = [name for name, _ in to_kafka_headers(event)]

    assert "ce_data" not in names
    # The Kafka key carries the aggregate id; the envelope must not invent a header for it.
    assert not any("key" in name for name in names)


def test_value_is_compact_utf8_json_of_data() -> None:
    event = _event(data={"name": "Cité artisanale", "m2": 12})

    value = encode_data(event)

    assert value == '{"name":"Cité artisanale","m2":12}'.encode()
    assert json.loads(value) == event.data


def test_subject_is_optional() -> None:
    event = _event(subject=None)

    headers = to_kafka_headers(event)
    back = from_kafka(headers, encode_data(event))

    assert "ce_subject" not in dict(headers)
    assert back.subject is None
    assert back == event


def test_time_in_another_offset_is_the_same_instant() -> None:
    paris = timezone(timedelta(hours=1))
    event = _event(time=datetime(2025, 3, 14, 10, 26, 53, tzinfo=paris))

    back = from_kafka(to_kafka_headers(event), encode_data(event))

    assert back.time == datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    assert back.time.utcoffset() == timedelta(hours=1)


def test_of_builds_the_envelope_from_a_payload() -> None:
    payload = _Opened(unit_id=UNIT_ID, surface_m2=40.0, trades=["ceramics"])

    event = CloudEvent.of(payload, source="/fabrique/test", subject=UNIT_ID)
    back = from_kafka(to_kafka_headers(event), encode_data(event))

    assert back.type == "test.unit.opened.v1"
    assert back.specversion == "1.0"
    assert back.datacontenttype == "application/json"
    assert back.data == {"unit_id": UNIT_ID, "surface_m2": 40.0, "trades": ["ceramics"]}
    assert _Opened.model_validate(back.data) == payload


def test_each_event_gets_its_own_id() -> None:
    assert _event().id != _event().id


def test_unknown_extension_headers_are_tolerated() -> None:
    headers = [*_good_headers(), ("ce_traceparent", b"00-abc-def-01"), ("x-other", b"\xff")]

    event = from_kafka(headers, b"{}")

    assert event.id == "evt-1"
    assert event.type == "inventory.unit.updated.v1"


def test_missing_time_and_content_type_get_defaults() -> None:
    headers = [(k, v) for k, v in _good_headers() if k not in {"ce_time", "content-type"}]

    event = from_kafka(headers, b'{"a": 1}')

    assert event.time.tzinfo is not None
    assert event.datacontenttype == "application/json"
    assert event.data == {"a": 1}


# Poison records --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        pytest.param(_without("ce_specversion"), b"{}", "specversion", id="no-specversion"),
        pytest.param(
            _replaced("ce_specversion", b"0.3"), b"{}", "specversion", id="specversion-0.3"
        ),
        pytest.param(
            _replaced("ce_specversion", b""), b"{}", "specversion", id="specversion-empty"
        ),
        pytest.param(_without("ce_id"), b"{}", "ce_id", id="no-id"),
        pytest.param(_replaced("ce_id", b""), b"{}", "ce_id", id="empty-id"),
        pytest.param(_without("ce_source"), b"{}", "ce_source", id="no-source"),
        pytest.param(_without("ce_type"), b"{}", "ce_type", id="no-type"),
        pytest.param(_good_headers(), None, "no value", id="value-none"),
        pytest.param(_good_headers(), b"not json", "not JSON", id="value-not-json"),
        pytest.param(_good_headers(), b"\xff\xfe{}", "not JSON", id="value-not-utf8"),
        pytest.param(_good_headers(), b"[1, 2]", "JSON object", id="value-json-array"),
        pytest.param(_good_headers(), b'"text"', "JSON object", id="value-json-string"),
        pytest.param(_good_headers(), b"null", "JSON object", id="value-json-null"),
        pytest.param(_replaced("ce_source", b"\xc3\x28"), b"{}", "not UTF-8", id="header-not-utf8"),
        pytest.param(
            [*_good_headers(), ("content-type", b"\xff")], b"{}", "not UTF-8", id="ct-not-utf8"
        ),
        pytest.param(
            _replaced("ce_time", b"yesterday"), b"{}", "invalid CloudEvent", id="bad-time"
        ),
        pytest.param(None, b"{}", "specversion", id="no-headers"),
    ],
)
def test_poison_records_raise_invalid_event(
    headers: list[tuple[str, bytes]] | None, value: bytes | None, reason: str
) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        from_kafka(headers, value)


def test_invalid_event_is_a_value_error() -> None:
    # Callers that only know ValueError still treat a poison record as bad input.
    assert issubclass(InvalidEvent, ValueError)


# Records that once escaped as another exception type, which would have stopped the consumer's
# partition instead of reaching the dead-letter topic.


def test_ce_data_header_is_poison() -> None:
    with pytest.raises(InvalidEvent):
        from_kafka([*_good_headers(), ("ce_data", b"x")], b"{}")


def test_null_header_value_is_poison() -> None:
    with pytest.raises(InvalidEvent):
        from_kafka([*_good_headers(), ("ce_traceparent", None)], b"{}")  # type: ignore[list-item]


def test_deeply_nested_value_is_poison() -> None:
    with pytest.raises(InvalidEvent):
        from_kafka(_good_headers(), b"[" * 100_000)


def test_time_without_offset_is_poison() -> None:
    headers = [(k, b"2026-11-27T10:00:00" if k == "ce_time" else v) for k, v in _good_headers()]
    with pytest.raises(InvalidEvent, match="UTC offset"):
        from_kafka(headers, b"{}")
