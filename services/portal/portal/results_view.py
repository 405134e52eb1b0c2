"""The view of a call's published results that the public page and the officer's call page
share: the grid's criteria as columns, each row's points under them, and why the order was
not followed, in words. Pure: no request, no upstream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portal import formatting
from portal.i18n import gettext
from portal.schemas import CallResults, ResultRow

_ = gettext


def decision_words(decision: str) -> str:
    """What the landlord did against the ranking's order, in words."""
    names = {"offered": _("Offer out of rank"), "rejected": _("Turned down")}
    return names.get(decision, decision)


@dataclass(frozen=True)
class Column:
    """A criterion of the scoring grid, as a column of the results table."""

    criterion_id: str
    label: str


def criterion_columns(rows: list[ResultRow]) -> list[Column]:
    """The grid's criteria, in the order they first appear: applicants may have applied under
    programmes with different grids, so the columns are the union of every row's lines."""
    seen: dict[str, Column] = {}
    for row in rows:
        for c in row.criteria:
            seen.setdefault(c.criterion_id, Column(c.criterion_id, c.label))
    return list(seen.values())


def result_cells(row: ResultRow, columns: list[Column]) -> list[str]:
    """One row's points under each column ("3 sur 5"), a dash where its grid has no such
    line."""
    mine = {c.criterion_id: c for c in row.criteria}
    cells = []
    for col in columns:
        c = mine.get(col.criterion_id)
        cells.append(
            _("%(score)s of %(max)s")
            % {"score": formatting.number(c.points), "max": formatting.number(c.max_points)}
            if c is not None
            else "—"
        )
    return cells


def departure_texts(row: ResultRow) -> list[str]:
    """Why the order was not followed on this row: the decision, its published ground in
    words and the landlord's text, one sentence each."""
    texts = []
    for d in row.departures:
        text = f"{decision_words(d.decision)}{_(': ')}{d.ground_label or d.ground}"
        if d.explanation:
            text += f" — {d.explanation}"
        texts.append(text)
    return texts


def results_view(results: CallResults) -> dict[str, Any]:
    """What the results table shows: the criteria columns and each row's cells."""
    columns = criterion_columns(results.rows)
    return {
        "columns": columns,
        "lines": [
            {
                "row": row,
                "criteria": result_cells(row, columns),
                "departures": departure_texts(row),
            }
            for row in results.rows
        ],
    }
