"""Units imported in bulk from a CSV file: each row checked exactly as `POST` of one unit.

The header row names `UnitCreate` fields; a cell left empty takes the field's default. A row
refused (bad cell, reference already taken, …) writes nothing; an accepted row is written with
its events. Rows are independent unless `atomic` asks for all or nothing; `dry_run` checks
every row, database rules included, and writes none.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from inventory import repository as repo
from inventory.schemas import ImportedRow, ImportProblem, ImportReport, RefusedRow, UnitCreate
from inventory.service.common import Sessions, check_owner
from inventory.service.units import insert_unit

COLUMNS = tuple(UnitCreate.model_fields)
REQUIRED = tuple(n for n, f in UnitCreate.model_fields.items() if f.is_required())
_INTEGERS = frozenset({"floor"})
_NUMBERS = frozenset(
    {
        "surface_m2",
        "ceiling_height_m",
        "floor_load_kg_m2",
        "power_kva",
        "rent_eur_m2_year",
        "charges_eur_m2_year",
    }
)
_FLAGS = frozenset({"goods_lift", "loading_dock", "extraction", "step_free_access"})
_LISTS = frozenset({"allowed_trades"})
# A spreadsheet writes its booleans in the person's words; the JSON API takes true/false only.
_TRUE = frozenset({"true", "yes", "oui", "1", "x"})
_FALSE = frozenset({"false", "no", "non", "0"})


class _CellError(ValueError):
    def __init__(self, column: str, code: str, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.problem = ImportProblem(column=column, code=code, reason=reason, params=params)


@dataclass
class ParsedRow:
    """One data row: its line in the file, its reference cell, and what was wrong with it."""

    line: int
    reference: str | None
    data: UnitCreate | None = None
    problems: list[ImportProblem] = field(default_factory=list)


# Reading the file (no I/O) -------------------------------------------------------------------


def decode(body: bytes) -> str:
    """The file as text; a 422 when it is not UTF-8 (what spreadsheets call 'CSV UTF-8')."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProblemError(
            422,
            f"The file is not UTF-8 text (byte {exc.start} cannot be read); export it from the "
            "spreadsheet as 'CSV UTF-8' and send it again.",
        ) from exc


def parse(text: str, max_rows: int) -> list[ParsedRow]:
    """Every data row of the CSV, validated as a `UnitCreate`; a 422 for a bad header row."""
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ProblemError(
            422, "The file is empty; send a header row of column names, then one row per unit."
        ) from None
    except csv.Error as exc:
        raise ProblemError(422, f"The header row cannot be read as CSV ({exc}).") from exc
    _check_header(header)
    rows: list[ParsedRow] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # a blank line between rows is not a unit
            if len(rows) >= max_rows:
                raise ProblemError(
                    413,
                    f"The file has more than {max_rows} units; an import takes at most "
                    f"{max_rows} rows. Split it into several files and send them one by one.",
                    max_rows=max_rows,
                )
            rows.append(_parse_row(reader.line_num, header, cells))
    except csv.Error as exc:
        raise ProblemError(
            422,
            f"Line {reader.line_num} cannot be read as CSV ({exc}); check its quotes and send "
            "the file again. Nothing was imported.",
        ) from exc
    return rows


def _check_header(header: list[str]) -> None:
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ProblemError(
            422,
            f"The header row names unknown columns: {', '.join(repr(u) for u in unknown)}. "
            f"Use only these column names: {', '.join(COLUMNS)}.",
            unknown_columns=unknown,
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise ProblemError(
            422,
            f"The header row names {', '.join(repeated)} more than once; keep one column each.",
        )
    missing = [r for r in REQUIRED if r not in header]
    if missing:
        raise ProblemError(
            422,
            f"The header row lacks the required columns {', '.join(missing)}; add them "
            "(every unit needs a reference, a surface and a rent).",
            missing_columns=missing,
        )


def _parse_row(line: int, header: list[str], cells: list[str]) -> ParsedRow:
    values = dict(zip(header, (c.strip() for c in cells), strict=False))
    row = ParsedRow(line=line, reference=values.get("reference") or None)
    if len(cells) > len(header):
        row.problems.append(
            ImportProblem(
                column=None,
                code="too_many_cells",
                reason=f"This row has {len(cells)} cells but the header names {len(header)} "
                "columns; remove the extra cells or quote a value that holds the delimiter.",
                params={"cells": len(cells), "columns": len(header)},
            )
        )
        return row
    body: dict[str, Any] = {}
    for column, cell in values.items():
        if cell == "":
            continue  # the field's default, as when a JSON body leaves it out
        try:
            body[column] = _cell(column, cell)
        except _CellError as exc:
            row.problems.append(exc.problem)
    try:
        data = UnitCreate.model_validate(body)
    except ValidationError as exc:
        # A cell already refused above is not reported twice.
        seen = {p.column for p in row.problems}
        row.problems.extend(p for p in _problems(exc) if p.column not in seen)
        return row
    if not row.problems:
        row.data = data
    return row


def _cell(column: str, cell: str) -> Any:
    """A cell as the JSON value the API would take."""
    if column in _INTEGERS:
        try:
            return int(cell)
        except ValueError:
            raise _CellError(
                column, "not_an_integer", f"{column} must be a whole number, not {cell!r}."
            ) from None
    if column in _NUMBERS:
        try:
            number = float(cell.replace(",", ".").replace(" ", "").replace("\u202f", ""))
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _CellError(
                column,
                "not_a_number",
                f"{column} must be a number such as 210 or 4.5, not {cell!r}.",
            )
        return number
    if column in _FLAGS:
        word = cell.lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _CellError(
            column, "not_a_boolean", f"{column} must be true or false (yes/no), not {cell!r}."
        )
    if column in _LISTS:
        # ';' as documented; ',' too, which a semicolon-separated file leaves in the cell.
        return [t.strip() for t in re.split(r"[;,]", cell) if t.strip()]
    return cell


def _problems(exc: ValidationError) -> list[ImportProblem]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err.get("loc", ())]
        column = loc[0] if loc else None
        message = str(err.get("msg", "is invalid"))
        message = message.removeprefix("Value error, ")
        ctx = {
            k: v if isinstance(v, int | float | str) else str(v)
            for k, v in err.get("ctx", {}).items()
        }
        out.append(
            ImportProblem(
                column=column,
                code=str(err.get("type", "invalid")),
                reason=f"{column or 'The row'}: {message[:1].lower()}{message[1:]}.",
                params=ctx,
            )
        )
    return out


# Writing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    atomic: bool = False
    dry_run: bool = False


async def check_site(sessions: Sessions, principal: Principal, site_id: str) -> None:
    """404 for an unknown site, 403 unless the caller is its landlord or an admin."""
    async with sessions() as session:
        site = await repo.get_site(session, site_id)
    if site is None:
        raise ProblemError(404, f"No site with id {site_id}.")
    check_owner(principal, site.landlord_id, "site")


async def import_units(
    sessions: Sessions,
    principal: Principal,
    site_id: str,
    rows: list[ParsedRow],
    options: ImportOptions,
) -> ImportReport:
    """Write every valid row (each in its own savepoint) in one transaction."""
    accepted: list[ImportedRow] = []
    refused: list[RefusedRow] = []
    async with sessions() as session:
        await session.begin()
        try:
            site = await repo.get_site(session, site_id)
            if site is None:
                raise ProblemError(404, f"No site with id {site_id}.")
            check_owner(principal, site.landlord_id, "site")
            for row in rows:
                written = await _write_row(session, principal, site_id, row)
                if written is None:
                    refused.append(
                        RefusedRow(line=row.line, reference=row.reference, problems=row.problems)
                    )
                else:
                    accepted.append(written)
            report = ImportReport(
                site_id=site_id,
                atomic=options.atomic,
                dry_run=options.dry_run,
                rows=len(rows),
                written=not options.dry_run and not (options.atomic and refused),
                accepted=accepted,
                refused=refused,
            )
            if report.written:
                await session.commit()
            else:
                await session.rollback()
        except BaseException:
            await session.rollback()
            raise
    if options.atomic and refused and not options.dry_run:
        raise ProblemError(
            422,
            f"{len(refused)} of {len(rows)} rows were refused, so nothing was imported "
            "(atomic=true: all or nothing). Correct the rows listed in 'refused' and send the "
            "whole file again.",
            **report.model_dump(mode="json"),
        )
    return report


async def _write_row(
    session: AsyncSession, principal: Principal, site_id: str, row: ParsedRow
) -> ImportedRow | None:
    """The row written in a savepoint, or None (its problems noted) with nothing kept."""
    if row.data is None:
        return None
    savepoint = await session.begin_nested()
    try:
        written = await insert_unit(session, principal, site_id, row.data)
    except ProblemError as exc:
        await savepoint.rollback()
        code = "reference_taken" if exc.status == 409 else "refused"
        column = "reference" if exc.status == 409 else None
        row.problems.append(
            ImportProblem(
                column=column,
                code=code,
                reason=exc.detail,
                params={"reference": row.data.reference},
            )
        )
        return None
    await savepoint.commit()
    return ImportedRow(
        line=row.line,
        reference=row.data.reference,
        unit_id=str(written.body["id"]),
        status=str(written.body["status"]),
    )
