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


def test_a_portal_run_keeps_the_notes_written_in_the_doc() -> None:
    from bench.report import PORTAL_BEGIN, PORTAL_END, keep_portal_notes

    old = f"{PORTAL_BEGIN}\n## 8.\n\nold table\n\n**What it costs.** hand-written.\n\nMore.\n"
    new = f"{PORTAL_BEGIN}\n## 8.\n\nnew table\n\n**What it costs.** built in.\n{PORTAL_END}\n"
    kept = keep_portal_notes(old, new)
    assert "new table" in kept and "old table" not in kept
    assert "hand-written.\n\nMore.\n" in kept and "built in" not in kept
    assert kept.endswith(f"{PORTAL_END}\n")
    assert keep_portal_notes("no notes here", new) == new
