"""The doc a full bench run writes keeps the sections other runs wrote."""

from __future__ import annotations

from bench.report import carry_over

OLD = """# Benchmarks

## Summary

old summary

## 1. Latency

old figures

## Rebalance: a consumer group's pause

pauses, by hand

## Sections that failed in this run

- latency

## Findings: profiles and fixes

old findings
"""

NEW = """# Benchmarks

## Summary

new summary

## 1. Latency

new figures

## Findings: profiles and fixes

new findings
"""


def test_a_section_the_run_does_not_write_is_kept_before_the_findings() -> None:
    doc = carry_over(OLD, NEW)
    assert "new figures" in doc and "old figures" not in doc
    assert "pauses, by hand" in doc
    assert doc.index("## 1. Latency") < doc.index("## Rebalance") < doc.index("## Findings")
    assert "new findings" in doc and "old findings" not in doc


def test_an_old_failure_list_is_not_carried() -> None:
    assert "## Sections that failed" not in carry_over(OLD, NEW)


def test_nothing_to_carry_leaves_the_new_doc_as_it_is() -> None:
    assert carry_over(NEW, NEW) == NEW
    assert carry_over("", NEW) == NEW
