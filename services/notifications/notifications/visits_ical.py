"""The iCalendar feed of upcoming workshop visits (RFC 5545): one VEVENT per slot, its UID
stable (`visit-<slot id>@fabrique.paris`, SEQUENCE the slot's version, so a calendar updates the
event in place), DTSTART/DTEND in UTC, SUMMARY, LOCATION (the address), DESCRIPTION and URL (the
portal's page). Text is escaped and lines folded at 75 octets, CRLF-terminated. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from notifications.models import VisitSlot

PRODID = "-//Fabrique//Visites d'ateliers//FR"
UID_DOMAIN = "fabrique.paris"


def _escape(text: str) -> str:
    # RFC 5545 §3.3.11: backslash, semicolon, comma escaped; newlines as \n.
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> str:
    """Fold a content line into 75-octet pieces (continuations start with a space), never
    inside a UTF-8 character."""
    out: list[str] = []
    current = ""
    size = 0
    for char in line:
        width = len(char.encode("utf-8"))
        limit = 75 if not out else 74
        if size + width > limit:
            out.append(current)
            current, size = "", 0
        current += char
        size += width
    out.append(current)
    return "\r\n ".join(out)


def _utc(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _event(slot: VisitSlot, portal_url: str, stamp: datetime) -> list[str]:
    where = ", ".join(p for p in (slot.site_address, f"{slot.postcode} Paris".strip()) if p)
    notes = [slot.description] if slot.description else []
    if slot.languages:
        notes.append("Langues / languages: " + ", ".join(slot.languages))
    access = [
        *slot.accessibility,
        *([slot.accessibility_notes] if slot.accessibility_notes else []),
    ]
    if access:
        notes.append("Accessibilité / accessibility: " + "; ".join(access))
    places = max(slot.capacity - slot.booked, 0)
    notes.append(f"Places libres / places left: {places} / {slot.capacity}")
    url = f"{portal_url.rstrip('/')}/visites/{slot.slot_id}"
    return [
        "BEGIN:VEVENT",
        f"UID:visit-{slot.slot_id}@{UID_DOMAIN}",
        f"DTSTAMP:{_utc(stamp)}",
        f"LAST-MODIFIED:{_utc(slot.updated_at)}",
        f"SEQUENCE:{max(slot.version, 0)}",
        f"DTSTART:{_utc(slot.starts_at)}",
        f"DTEND:{_utc(slot.ends_at)}",
        f"SUMMARY:{_escape(slot.title or slot.site_name)}",
        f"LOCATION:{_escape(where + (' (' + slot.site_name + ')' if slot.site_name else ''))}",
        f"DESCRIPTION:{_escape(chr(10).join(notes))}",
        f"URL:{url}",
        "STATUS:CONFIRMED",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
    ]


def calendar(slots: Iterable[VisitSlot], *, portal_url: str, stamp: datetime) -> str:
    """The VCALENDAR document of these slots."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Fabrique — visites d'ateliers",
        "X-WR-TIMEZONE:Europe/Paris",
    ]
    for slot in slots:
        lines += _event(slot, portal_url, stamp)
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
