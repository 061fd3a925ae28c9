"""Read-only SQL views a service publishes as its read contract.

A service that must aggregate another's data at scale (settlement over millions of lot movements)
reads the views the owner publishes, never the owner's tables: the owner may then change its
tables as long as it keeps its views' columns. Each view's text lives with its owner; migrations
create the views (a migration is frozen history, so it copies the text), and tests pin each view's
columns and check that the migrated views are the ones their owners define.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    name: str
    select: str  # the defining query

    @property
    def create(self) -> str:
        return f"CREATE OR REPLACE VIEW {self.name} AS {self.select.strip()}"

    @property
    def drop(self) -> str:
        return f"DROP VIEW IF EXISTS {self.name}"
