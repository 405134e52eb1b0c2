"""Which of notifications' consumed topics carry personal data, against deploy/topics.json."""

from __future__ import annotations

from fabkit.localstack.kafka import load_topic_specs
from notifications.events.handlers import consumer_specs
from notifications.settings import NotificationsSettings
from notifications.signals import Signals


def test_the_consumer_treats_exactly_the_declared_topics_as_personal() -> None:
    settings = NotificationsSettings(database_url="sqlite+aiosqlite:///:memory:")
    (spec,) = consumer_specs(settings, Signals())
    personal = {name for name, routes in spec.topics.items() if routes.personal_data}
    declared = {s.name for s in load_topic_specs() if s.personal_data}
    assert personal == declared & set(spec.topics) == {"leasing.artisan.events"}
