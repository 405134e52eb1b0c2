"""Notifications: saved searches, the feed and the delivery log, with the visitor's token; guest
alerts without one."""

from __future__ import annotations
