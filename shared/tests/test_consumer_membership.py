"""The consumer group membership settings: typed and bounded, and what reaches aiokafka."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fabkit.kafka import make_consumer
from fabkit.settings import ServiceSettings


def test_defaults_are_dynamic_membership_with_a_ten_second_session() -> None:
    settings = ServiceSettings()
    assert settings.kafka_group_instance_id is None
    assert settings.kafka_session_timeout_ms == 10000
    assert settings.kafka_heartbeat_interval_ms == 1000


@pytest.mark.parametrize(
    "values",
    [
        {"kafka_session_timeout_ms": 5999},  # under the broker's group.min.session.timeout.ms
        {"kafka_session_timeout_ms": 300001},
        {"kafka_heartbeat_interval_ms": 99},
        {"kafka_session_timeout_ms": 6000, "kafka_heartbeat_interval_ms": 2001},
        {"kafka_group_instance_id": ""},
        {"kafka_group_instance_id": "worker 0"},
        {"kafka_group_instance_id": "x" * 250},
    ],
)
def test_out_of_bounds_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(**values)  # type: ignore[arg-type]


def test_the_heartbeat_rule_says_what_to_do() -> None:
    with pytest.raises(ValidationError, match="at most a third of kafka_session_timeout_ms"):
        ServiceSettings(kafka_session_timeout_ms=6000, kafka_heartbeat_interval_ms=3000)


def test_settings_read_from_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABRIQUE_KAFKA_GROUP_INSTANCE_ID", "notifications-worker-0")
    monkeypatch.setenv("FABRIQUE_KAFKA_SESSION_TIMEOUT_MS", "6000")
    settings = ServiceSettings()
    assert settings.kafka_group_instance_id == "notifications-worker-0"
    assert settings.kafka_session_timeout_ms == 6000


async def test_make_consumer_passes_membership_to_aiokafka() -> None:
    consumer = make_consumer(
        "127.0.0.1:1", "g", "c", "t",
        group_instance_id="g-0", session_timeout_ms=6000, heartbeat_interval_ms=500,
    )  # fmt: skip
    assert consumer._group_instance_id == "g-0"
    assert consumer._session_timeout_ms == 6000
    assert consumer._heartbeat_interval_ms == 500
    dynamic = make_consumer("127.0.0.1:1", "g", "c", "t")
    assert dynamic._group_instance_id is None


@pytest.mark.parametrize(("session", "heartbeat"), [(5000, 1000), (6000, 2500)])
def test_make_consumer_refuses_what_the_broker_would(session: int, heartbeat: int) -> None:
    with pytest.raises(ValueError, match=r"session_timeout_ms|heartbeat_interval_ms"):
        make_consumer("127.0.0.1:1", "g", "c", "t", session_timeout_ms=session,
                      heartbeat_interval_ms=heartbeat)  # fmt: skip
