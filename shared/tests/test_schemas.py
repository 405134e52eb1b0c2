"""StrictInput: what every API input model refuses, and what its JSON Schema says about it."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from fabkit.schemas import StrictInput, text_pattern

Name = Annotated[str, Field(min_length=2, max_length=10)]


class Sample(StrictInput):
    name: Name
    note: str | None = Field(default=None, max_length=5)


def test_text_is_stripped_before_the_minimum_length() -> None:
    assert Sample(name="  ab  ").name == "ab"
    with pytest.raises(ValidationError, match="at least 2"):
        Sample(name="  a  ")


def test_padding_does_not_get_past_the_maximum_length() -> None:
    """Found by Schemathesis: 'x' padded with spaces passed max_length once stripped."""
    with pytest.raises(ValidationError) as raised:
        Sample(name="ab" + " " * 20)
    (error,) = raised.value.errors()
    assert (
        "name must be at most 10 characters, surrounding spaces included (got 22)" in error["msg"]
    )
    with pytest.raises(ValidationError, match="at most 5 characters"):
        Sample(name="abc", note="1234  ")
    assert Sample(name="abc", note=None).note is None


@pytest.mark.parametrize("value", ["a\x00b", "\ud800x"])
def test_text_the_database_cannot_store_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="valid Unicode without NUL"):
        Sample(name=value)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Sample.model_validate({"name": "abc", "nmae": "x"})


def test_the_schema_writes_the_text_rules_on_plain_text_fields() -> None:
    schema = Sample.model_json_schema()
    assert schema["properties"]["name"]["pattern"] == text_pattern(2)
    pattern = re.compile(text_pattern(2))
    assert pattern.match("  ab ") and not pattern.match(" a ") and not pattern.match("a\x00b")
    assert re.compile(text_pattern(0)).match("") and re.compile(text_pattern(1)).match(" x")
