"""Base of every API input model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def _unstorable_text(value: Any) -> bool:
    if isinstance(value, str):
        if "\x00" in value:  # PostgreSQL text cannot hold NUL
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unstorable_text(k) or _unstorable_text(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(_unstorable_text(v) for v in value)
    return False


class StrictInput(BaseModel):
    """Unknown fields are refused, text is stripped, and text that is not valid Unicode is a
    validation error rather than a database failure."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if _unstorable_text(data):
            raise ValueError(
                "text must be valid Unicode without NUL characters or unpaired surrogates"
            )
        return data
