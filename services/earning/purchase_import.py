"""`coalition import purchases --partner ID FILE.csv`: a partner's day of sales, recorded in bulk.

The file is read twice, both times streaming (memory stays flat whatever its size): once to hash
it, once to record it in batches through `bulk.import_purchases`: each row is checked and earns
exactly as recordPurchase would check and earn it (the partner's earn rules, its lines, the
breakdown stored with it), then the batch is booked by the ledger's set-based write.
Every row's idempotency key is derived from the file's content hash and its row number, under
the partner's import scope (`ledger.service.import_client_id`), so running the same file again — after
a crash, a SIGKILL, a lost connection — replays what was recorded (nothing moves twice) and
records the rest. A changed file is another file: its rows get other keys, and rows already
recorded under their orderId come back as DUPLICATE_ORDER.

Columns (a header line names them, in any order): memberNumber, orderId, amount, currency,
occurredAt (ISO 8601 with an offset; empty: now), and optionally lines: a JSON array of the
purchase's lines as recordPurchase takes them, each an object {"sku", "category", "quantity",
"amount" or "unitPrice"} with amounts as decimal strings (or numbers) in the row's currency; empty:
one line of amount. A line that is not such an object is INVALID naming `lines[i]` or its field;
what recordPurchase checks about lines (AMOUNT_MISMATCH, a SKU twice…) it checks here too.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

from services.earning import bulk, decisions
from services.earning.purchases import LineInput, PurchaseInput
from services.earning.rules import PartnerRules
from services.ledger import service as ledger
from services.members.tiers import TierSet
from services.partners import service as partners
from services.partners.service import PartnerView
from shared.access import Principal
from shared.audit_log import record_on
from shared.database import Database
from shared.error_codes import UserErrorCode
from shared.errors import UserError
from shared.money import Money
from shared.sql import connection

REQUIRED_COLUMNS = ("memberNumber", "orderId", "amount", "currency", "occurredAt")
OPTIONAL_COLUMNS = ("lines",)
BATCH_SIZE = 1000
HASH_CHUNK = 1 << 20


class BadFile(Exception):
    """The file cannot be imported at all (no header, a required column missing)."""


@dataclass
class Summary:
    """What an import did, row by row counted; failures are written out, not kept."""

    recorded: int = 0
    replayed: int = 0
    failed: Counter[str] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return self.recorded + self.replayed + sum(self.failed.values())


async def partner_exists(db: Database, partner_id: int) -> bool:
    async with connection(db) as conn:
        return await partners.cached_partner(db, conn, partner_id) is not None


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def count_rows(path: Path) -> int:
    """Data lines (for the progress bar): newlines less the header's. Quoted newlines inside a
    field make it an estimate, which is all a progress bar needs."""
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            lines += chunk.count(b"\n")
    return max(0, lines - 1)


def row_key(content_hash: str, row_number: int) -> str:
    """The row's idempotency key: the same file's same row always gets the same one."""
    return f"file:{content_hash[:32]}:row:{row_number}"


@dataclass(frozen=True)
class Row:
    number: int  # 1 = the first line after the header
    member_number: str
    order_id: str
    purchase: PurchaseInput | None  # None: the row could not be read as a purchase
    error: UserError | None = None


def _refused(code: UserErrorCode, field_name: str, message: str) -> UserError:
    return UserError(code=code, field=field_name, message=message)


def parse_row(number: int, raw: dict[str, str | None], content_hash: str) -> Row:
    member = (raw.get("memberNumber") or "").strip()
    order = raw.get("orderId") or ""
    error: UserError | None = None
    amount = Decimal(0)
    occurred: datetime | None = None
    try:
        amount = Decimal((raw.get("amount") or "").strip())
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        error = _refused(UserErrorCode.INVALID_AMOUNT, "amount", "amount is not a decimal number")
    when = (raw.get("occurredAt") or "").strip()
    if error is None and when:
        try:
            occurred = datetime.fromisoformat(when)
        except ValueError:
            error = _refused(UserErrorCode.INVALID, "occurredAt", "occurredAt is not an ISO 8601 instant")
    currency = (raw.get("currency") or "").strip().upper()
    lines: tuple[LineInput, ...] | None = None
    text = (raw.get("lines") or "").strip()
    if error is None and text:
        lines, error = parse_lines(text, currency)
    if error is not None:
        return Row(number, member, order, None, error)
    purchase = PurchaseInput(
        row_key(content_hash, number), member, order, Money(amount, currency), occurred, lines=lines
    )
    return Row(number, member, order, purchase)


LINE_FIELDS = frozenset({"sku", "category", "quantity", "amount", "unitPrice"})


def parse_lines(text: str, currency: str) -> tuple[tuple[LineInput, ...] | None, UserError | None]:
    """The lines column as recordPurchase's lines (amounts in the row's currency), or the first
    reason it cannot be one. Only the shape is checked here; the earning service checks the rest."""
    try:
        parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        parsed = None
    if not isinstance(parsed, list):
        return None, _refused(UserErrorCode.INVALID, "lines", "lines is not a JSON array")
    lines = []
    for i, raw in enumerate(parsed):
        at = f"lines[{i}]"
        if not isinstance(raw, dict) or not raw.keys() <= LINE_FIELDS:
            return None, _refused(
                UserErrorCode.INVALID, at, f"{at} is not an object of {', '.join(sorted(LINE_FIELDS))}"
            )
        sku, category, quantity = raw.get("sku"), raw.get("category"), raw.get("quantity", Decimal(1))
        if not isinstance(sku, str) or not (category is None or isinstance(category, str)):
            return None, _refused(UserErrorCode.INVALID, f"{at}.sku", f"{at}.sku and category are text")
        if not isinstance(quantity, Decimal) or quantity != quantity.to_integral_value():
            return None, _refused(UserErrorCode.INVALID, f"{at}.quantity", f"{at}.quantity is a whole number")
        money: dict[str, Money | None] = {}
        for name in ("amount", "unitPrice"):
            value = _decimal(raw.get(name))
            if value is False:
                return None, _refused(
                    UserErrorCode.INVALID_AMOUNT, f"{at}.{name}", f"{at}.{name} is not a number"
                )
            money[name] = Money(value, currency) if isinstance(value, Decimal) else None
        lines.append(LineInput(sku, category, int(quantity), money["unitPrice"], money["amount"]))
    return tuple(lines), None


def _decimal(value: Any) -> Decimal | bool | None:
    """A finite Decimal, None when absent, False when not a number."""
    if value is None:
        return None
    try:
        found = Decimal(value) if isinstance(value, (str, Decimal)) else None
    except InvalidOperation:
        return False
    return found if found is not None and found.is_finite() else False


def read_rows(f: TextIO, content_hash: str) -> Iterator[Row]:
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise BadFile(f"the header lacks {', '.join(missing)} (columns: {', '.join(REQUIRED_COLUMNS)}"
                      f", optionally {', '.join(OPTIONAL_COLUMNS)})")  # fmt: skip
    for number, raw in enumerate(reader, start=1):
        yield parse_row(number, raw, content_hash)


def batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def import_file(
    db: Database,
    principal: Principal,
    partner_id: int,
    path: Path,
    failures: TextIO,
    *,
    batch_size: int = BATCH_SIZE,
    advance: Callable[[int], None] = lambda n: None,
) -> Summary:
    """Records every row of the file (see the module docstring); failed rows go to `failures` as
    CSV (row, memberNumber, orderId, code, field, message).

    Pipelined, with the one-by-one order kept: while batch n is booked (its statements in the
    database), batch n+1 is read and decided in a thread (CSV parsing and the engine are pure
    Python); batch n+1's booking starts only once batch n's has committed, so every batch sees
    the books exactly as a serial import leaves them (a duplicate orderId further down the file,
    a cap per member, a debt: the same answers). At most two batches are in memory."""
    content_hash = file_hash(path)
    async with connection(db) as conn:
        await record_on(
            conn,
            principal,
            "purchases.import",
            f"partner:{partner_id}",
            {"file": path.name, "sha256": content_hash},
        )
    summary = Summary()
    out = csv.writer(failures)
    out.writerow(["row", "memberNumber", "orderId", "code", "field", "message"])
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = batches(read_rows(f, content_hash), batch_size)
        booking: asyncio.Task[list[ledger.Outcome]] | None = None
        booked: list[Row] = []
        try:
            while True:
                # Rules may change during a long import: read per batch (the process's cache).
                partner, rules = await bulk.import_terms(db, principal, partner_id)
                tiers = await decisions.tier_set(db)
                batch, prepared = await asyncio.to_thread(_read_and_prepare, rows, partner, rules, tiers)
                if prepared is None and batch is not None:  # a multiplying tier: the batch's tiers first
                    readable = [r.purchase for r in batch if r.purchase is not None]
                    _, tier_of = await bulk.batch_tiers(db, readable)
                    prepared = await asyncio.to_thread(bulk.prepare, partner, rules, readable, tiers, tier_of)
                if booking is not None:
                    _tally(summary, out, booked, await booking)
                    advance(len(booked))
                    booking = None
                if batch is None:
                    break
                booked = batch
                booking = asyncio.ensure_future(bulk.book_import(db, principal, partner_id, prepared))
        finally:
            if booking is not None:  # reading failed while a batch was being booked: let it end
                await asyncio.gather(booking, return_exceptions=True)
    return summary


def _read_and_prepare(
    rows: Iterator[list[Row]], partner: PartnerView | None, rules: PartnerRules, tiers: TierSet
) -> tuple[list[Row] | None, bulk.Prepared | None]:
    """The next batch of the file, checked and decided (in the import's reading thread); not
    decided (None) when a tier multiplies: the batch's members' tiers are read first, set-wise."""
    batch = next(rows, None)
    if batch is not None and decisions.multiplying(tiers):
        return batch, None
    readable = [r.purchase for r in batch or [] if r.purchase is not None]
    return batch, bulk.prepare(partner, rules, readable)


def _tally(summary: Summary, out: Any, batch: list[Row], outcomes: list[ledger.Outcome]) -> None:
    """Counts a booked batch's rows and writes its failures out."""
    readable = [r for r in batch if r.purchase is not None]
    answered = {r.number: o for r, o in zip(readable, outcomes, strict=True)}
    for row in batch:
        outcome = answered.get(row.number)
        errors = [row.error] if row.error is not None else (outcome.errors if outcome else [])
        if errors:
            summary.failed[errors[0].code.value] += 1
            for e in errors:
                out.writerow([row.number, row.member_number, row.order_id, e.code.value, e.field, e.message])
        elif outcome is not None and outcome.replayed:
            summary.replayed += 1
        else:
            summary.recorded += 1
