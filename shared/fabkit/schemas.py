"""Base of every API input model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# What str.strip() removes (ECMA regexes' \s, used by JSON Schema, lacks \x1c-\x1f and \x85).
_WS = r"\s\x1c-\x1f\x85"


def text_pattern(min_length: int = 0) -> str:
    """What StrictInput accepts as text, as a JSON Schema pattern: no NUL (PostgreSQL text cannot
    hold it), and at least `min_length` characters once surrounding whitespace is stripped."""
    if min_length == 0:
        return r"^[^\x00]*$"
    if min_length == 1:
        return rf"^[{_WS}]*[^{_WS}\x00][^\x00]*$"
    inner = rf"[^\x00]{{{min_length - 2},}}"
    return rf"^[{_WS}]*[^{_WS}\x00]{inner}[^{_WS}\x00][{_WS}]*$"


def _document_text_rules(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _document_text_rules(item)
    elif isinstance(schema, dict):
        if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(
            schema
        ):
            schema["pattern"] = text_pattern(schema.get("minLength", 0))
        for key in ("properties", "items", "anyOf"):
            if key in schema:
                value = schema[key]
                _document_text_rules(list(value.values()) if key == "properties" else value)


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

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The validator below is invisible to JSON Schema: write its rule on every plain text
        # field, so clients and fuzzers know what is refused.
        schema = handler.resolve_ref_schema(handler(core_schema))
        _document_text_rules(schema)
        return schema

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if _unstorable_text(data):
            raise ValueError(
                "text must be valid Unicode without NUL characters or unpaired surrogates"
            )
        if isinstance(data, dict):
            cls._check_raw_lengths(data)
        return data

    @classmethod
    def _check_raw_lengths(cls, data: dict[str, Any]) -> None:
        # Stripping runs before the length checks, so "x" padded with 10,000 spaces would pass a
        # max_length of 300; the schema's maxLength counts every character sent, so must we.
        for name, field in cls.model_fields.items():
            value = data.get(field.alias or name)
            if not isinstance(value, str):
                continue
            for rule in field.metadata:
                limit = getattr(rule, "max_length", None)
                if isinstance(limit, int) and len(value) > limit:
                    raise ValueError(
                        f"{field.alias or name} must be at most {limit} characters, surrounding "
                        f"spaces included (got {len(value)})"
                    )
