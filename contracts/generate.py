"""Write (or, with --check, verify) the JSON Schema snapshot of every payload that leaves the
platform: published events (`contracts/schemas/`), webhook bodies (`contracts/webhooks/`) and
the data of e-mails (`contracts/email/`).

    uv run python contracts/generate.py           # rewrite the snapshots
    uv run python contracts/generate.py --check   # exit 1 if a snapshot is missing or stale

A snapshot is the producer's contract for one versioned event type, webhook type or e-mail.
Inside a version only additive changes are allowed; removing or retyping a field needs a new
type (`....v2`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fabkit.events import EventPayload

CONTRACTS = Path(__file__).resolve().parent
SCHEMAS = CONTRACTS / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Each module exports ALL_PAYLOADS; a service adds its `events.published` here when it publishes.
PAYLOAD_MODULES = ("inventory.events.published", "leasing.events.published")
WEBHOOKS = CONTRACTS / "webhooks"
EMAILS = CONTRACTS / "email"
# What leaves notifications other than by Kafka: (folder, snapshot key, the module's tuple of
# classes, the class variable naming each type). Bodies are described as they are sent
# (serialisation schema: every field the sender always writes is required).
OUTGOING = (
    (WEBHOOKS, "x-webhook-type", "notifications.contracts", "WEBHOOKS", "message_type"),
    (EMAILS, "x-email-type", "notifications.contracts", "EMAILS", "email_type"),
)


def payload_classes() -> dict[str, type[EventPayload]]:
    """Every published payload class by its event type."""
    found: dict[str, type[EventPayload]] = {}
    for name in PAYLOAD_MODULES:
        for cls in importlib.import_module(name).ALL_PAYLOADS:
            if cls.event_type in found:
                raise SystemExit(
                    f"{cls.event_type} is claimed by both {found[cls.event_type].__qualname__} "
                    f"and {cls.__qualname__}"
                )
            found[cls.event_type] = cls
    return dict(sorted(found.items()))


def snapshot(cls: type[EventPayload]) -> dict[str, Any]:
    """The snapshot document: the payload's JSON Schema, tagged with its dialect and type."""
    return {"$schema": DIALECT, "x-event-type": cls.event_type, **cls.model_json_schema()}


def render(cls: type[EventPayload]) -> str:
    return json.dumps(snapshot(cls), indent=2, ensure_ascii=False) + "\n"


def snapshot_path(event_type: str) -> Path:
    return SCHEMAS / f"{event_type}.json"


def stale_snapshots(classes: dict[str, type[EventPayload]]) -> list[str]:
    """Why the snapshots on disk differ from the payload classes (empty when they agree)."""
    problems = []
    for event_type, cls in classes.items():
        path = snapshot_path(event_type)
        if not path.exists():
            problems.append(f"missing: {path.relative_to(CONTRACTS.parent)}")
        elif path.read_text(encoding="utf-8") != render(cls):
            problems.append(f"differs: {path.relative_to(CONTRACTS.parent)}")
    for path in sorted(SCHEMAS.glob("*.json")):
        if path.stem not in classes:
            problems.append(
                f"orphan: {path.relative_to(CONTRACTS.parent)} has no payload class "
                "(retiring an event type is a breaking change: delete the file on purpose)"
            )
    return problems


def outgoing_classes() -> dict[Path, type[BaseModel]]:
    """Every webhook body and e-mail model, by the path of its snapshot."""
    found: dict[Path, type[BaseModel]] = {}
    for folder, _, module, attribute, type_var in OUTGOING:
        for cls in getattr(importlib.import_module(module), attribute):
            path = folder / f"{getattr(cls, type_var)}.json"
            if path in found:
                raise SystemExit(f"{path.name} is claimed by two classes of {module}")
            found[path] = cls
    return dict(sorted(found.items()))


def outgoing_snapshot(path: Path, cls: type[BaseModel]) -> dict[str, Any]:
    """The snapshot document of a webhook body or an e-mail's data."""
    key = next(key for folder, key, *_ in OUTGOING if path.parent == folder)
    return {"$schema": DIALECT, key: path.stem, **cls.model_json_schema(mode="serialization")}


def outgoing_render(path: Path, cls: type[BaseModel]) -> str:
    return json.dumps(outgoing_snapshot(path, cls), indent=2, ensure_ascii=False) + "\n"


def stale_outgoing(classes: dict[Path, type[BaseModel]]) -> list[str]:
    """Why the webhook and e-mail snapshots on disk differ from the models (empty if none)."""
    problems = []
    for path, cls in classes.items():
        if not path.exists():
            problems.append(f"missing: {path.relative_to(CONTRACTS.parent)}")
        elif path.read_text(encoding="utf-8") != outgoing_render(path, cls):
            problems.append(f"differs: {path.relative_to(CONTRACTS.parent)}")
    for folder, *_ in OUTGOING:
        for path in sorted(folder.glob("*.json")):
            if path not in classes:
                problems.append(
                    f"orphan: {path.relative_to(CONTRACTS.parent)} has no model "
                    "(retiring a type is a breaking change: delete the file on purpose)"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write or check the JSON Schema snapshots of published event payloads."
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any snapshot differs"
    )
    args = parser.parse_args(argv)
    classes = payload_classes()
    outgoing = outgoing_classes()
    if args.check:
        problems = stale_snapshots(classes) + stale_outgoing(outgoing)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(
                "Run `uv run python contracts/generate.py` and commit the snapshots "
                "(only additive changes inside a version).",
                file=sys.stderr,
            )
            return 1
        print(f"{len(classes) + len(outgoing)} snapshots up to date")
        return 0
    SCHEMAS.mkdir(exist_ok=True)
    for event_type, cls in classes.items():
        path = snapshot_path(event_type)
        text = render(cls)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(CONTRACTS.parent)}")
    for path, model in outgoing.items():
        text = outgoing_render(path, model)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(CONTRACTS.parent)}")
    for problem in stale_snapshots(classes) + stale_outgoing(outgoing):
        print(problem, file=sys.stderr)  # only orphans can remain after writing
    return 0


if __name__ == "__main__":
    sys.exit(main())
