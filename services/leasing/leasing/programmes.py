"""Programmes are configuration: a TOML (or JSON) file read and validated at start-up."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

from pydantic import ValidationError

from leasing.eligibility import Catalogue

DEFAULT_FILE = Path(__file__).with_name("programmes.toml")


class ProgrammeConfigError(ValueError):
    """The programme file cannot be read or breaks the rule language."""


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and validate the programme file (`.toml` or `.json`)."""
    path = path or DEFAULT_FILE
    try:
        raw = path.read_bytes()
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
        return Catalogue.model_validate(data)
    except (OSError, ValueError, ValidationError) as exc:
        raise ProgrammeConfigError(f"programme file {path}: {exc}") from exc


def content_hash(catalogue: Catalogue) -> str:
    """SHA-256 of the catalogue's canonical JSON: formatting and comments do not count."""
    canonical = json.dumps(
        catalogue.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
