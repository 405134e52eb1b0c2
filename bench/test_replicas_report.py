"""Section 9's writer against a real run's results (bench/testdata, 2026-12-02)."""

import json
from pathlib import Path
from typing import Any

from bench.replicas_report import HEADING, splice

RESULTS = Path(__file__).parent / "testdata" / "replicas-results.json"

DOC = """# Benchmarks

## Summary

| row | what | figure |
|---|---|---|
| 1 | alerts | 1 |

## 8. Portal: the board page

Board text.

## Findings: profiles and fixes

Profiles.
"""


def _results() -> dict[str, Any]:
    return json.loads(RESULTS.read_text())


def test_the_section_goes_before_the_findings_and_the_rows_into_the_summary() -> None:
    doc = splice(DOC, _results())
    assert doc.index("## 8.") < doc.index(HEADING) < doc.index("## Findings")
    assert "\n\n## Findings: profiles and fixes" in doc
    assert "| 9a | fan-out of one vacancy to 10,000 webhooks" in doc
    assert "| 9b | sustained vacancies/s" in doc
    assert "**50.0/s** with one replica" in doc and "**65.0/s** with two" in doc


def test_splicing_again_replaces_the_section_and_rows_without_doubling_them() -> None:
    once = splice(DOC, _results())
    twice = splice(once, _results())
    assert twice == once
    assert twice.count(HEADING) == 1 and twice.count("| 9a |") == 1


def test_what_ran_beside_the_bench_follows_the_load_before_it() -> None:
    quiet = _results()
    assert "nothing else ran beside it" in splice(DOC, quiet)
    busy = _results()
    busy["machine"]["load_before"] = "12.50 9.00 4.00"
    text = splice(DOC, busy)
    assert "other work ran beside it" in text and "nothing else ran" not in text
