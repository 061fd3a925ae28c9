"""Settlement reads the ledger and the partners only through what they publish: their views, and
the partners' service functions; never their tables."""

from __future__ import annotations

import re
from pathlib import Path

import services.settlement
from services.ledger import models as ledger_models
from services.partners import models as partners_models
from shared.models import Base


def _tables_of(module: object) -> set[str]:
    return {
        value.__tablename__
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Base) and hasattr(value, "__tablename__")
    }


def test_settlement_names_no_ledger_or_partner_table():
    foreign = _tables_of(ledger_models) | _tables_of(partners_models)
    assert {"lot_consumptions", "journal_entries", "redemptions", "partner_contracts", "partners"} <= foreign
    reads = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)", re.IGNORECASE)
    found = {
        f"{path.name}: {table}"
        for path in Path(services.settlement.__file__).parent.glob("*.py")
        for table in reads.findall(path.read_text())
        if table in foreign
    }
    assert found == set()
