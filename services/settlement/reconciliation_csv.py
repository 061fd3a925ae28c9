"""A partner's reconciliation file, read: CSV with columns orderId, kind, points, occurredAt.

Read whole, before anything is written; every bad row is reported with its line number (the
header is line 1) and the column it concerns, up to MAX_REPORTED_ERRORS. What a file may hold is
what the ledger can store: points are ASCII digits within BIGINT, text has no controls, NUL,
bidi overrides or lone surrogates (`shared.parsing`), and a field past the csv module's limit is
a row error, not an exception.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.settlement.models import ReconciliationKind
from shared.error_codes import UserErrorCode
from shared.errors import InputError, UserError
from shared.parsing import text_problem, whole_number

COLUMNS = ("orderId", "kind", "points", "occurredAt")
# The ledger entries a partner's own systems know about; expiries are the coalition's doing.
KINDS = tuple(ReconciliationKind)
MAX_ORDER_ID = 200
MAX_REPORTED_ERRORS = 50


@dataclass(frozen=True)
class Row:
    order_id: str
    kind: str
    points: int


def _row_error(line: int, column: str, problem: str) -> UserError:
    return UserError(code=UserErrorCode.INVALID_ROW, field="csv", message=f"line {line}: {column}: {problem}")


def _parse_row(line: int, values: dict[str, str], period: tuple[datetime, datetime]) -> list[UserError]:
    errors = []
    for column in COLUMNS:
        problem = text_problem(values[column])
        if problem is not None:
            errors.append(_row_error(line, column, problem))
    if errors:
        return errors
    if not values["orderId"] or len(values["orderId"]) > MAX_ORDER_ID:
        errors.append(_row_error(line, "orderId", f"must be 1 to {MAX_ORDER_ID} characters"))
    if values["kind"].upper() not in KINDS:
        errors.append(_row_error(line, "kind", f"{values['kind']!r} is not one of {', '.join(KINDS)}"))
    points = whole_number(values["points"])
    if points is None or points <= 0:
        errors.append(
            _row_error(line, "points", f"{values['points']!r} is not a positive whole number in ASCII digits")
        )
    text = values["occurredAt"]
    try:
        occurred = datetime.fromisoformat(text)
    except ValueError:
        return [*errors, _row_error(line, "occurredAt", f"{text!r} is not an ISO 8601 instant")]
    if occurred.tzinfo is None:
        errors.append(_row_error(line, "occurredAt", "needs a time zone offset"))
    elif not period[0] <= occurred < period[1]:
        span = f"[{period[0].isoformat()}, {period[1].isoformat()})"
        errors.append(_row_error(line, "occurredAt", f"{text} is outside the run's period {span}"))
    return errors


def _records(reader: csv.DictReader) -> Iterator[tuple[int, dict[str | None, Any] | UserError]]:
    """(line, record) for each row, or (line, error) for a row the csv module cannot read (a
    field past its 131,072-character limit); the reader carries on at the next row."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.reader.line_num  # DictReader counts only the rows it returned
            yield line, _row_error(line, "row", f"{exc}: no column is that long")
        else:
            yield reader.line_num, record


def parse_csv(text: str, period: tuple[datetime, datetime]) -> list[Row]:
    """Every row, or an InputError listing each bad one by line number (header is line 1)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
    except csv.Error as exc:
        raise InputError([UserError(UserErrorCode.INVALID_HEADER, "csv", f"line 1: {exc}")]) from exc
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(
            [
                UserError(
                    UserErrorCode.INVALID_HEADER, "csv", f"line 1: missing column(s) {', '.join(missing)}"
                )
            ]
        )
    reader.fieldnames = header
    rows: list[Row] = []
    errors: list[UserError] = []
    for line, record in _records(reader):
        if isinstance(record, UserError):
            errors.append(record)
        elif None in record:
            errors.append(_row_error(line, "row", f"more fields than the {len(header)} columns"))
        else:
            # Ids, kinds and instants are trimmed as they always were; points are exactly digits.
            values = {k: str(record.get(k) or "") for k in COLUMNS}
            values |= {k: values[k].strip() for k in COLUMNS if k != "points"}
            problems = _parse_row(line, values, period)
            if problems:
                errors += problems
            else:
                rows.append(Row(values["orderId"], values["kind"].upper(), int(values["points"])))
        if len(errors) >= MAX_REPORTED_ERRORS:
            errors.append(UserError(UserErrorCode.TOO_MANY_ERRORS, "csv", f"stopped at line {line}"))
            break
    if errors:
        raise InputError(errors)
    return rows
