"""Counting the SQL statements a block of code sends to the database, whichever path it takes:
SQLAlchemy sessions (counted as the engine executes them) and the asyncpg connections the ledger
and settlement borrow from the same pool (`shared/sql.py`), counted by asyncpg's query logger on
every connection checked out meanwhile (transaction BEGIN/COMMIT included).

Left out: the type introspection asyncpg runs itself the first time a connection meets a type
(once per connection, not per request, so which pooled connection a request gets would change
the count)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event

from shared.database import Database

ASYNCPG_INTROSPECTION = ("typeinfo_tree", "current_setting('jit')", "set_config('jit'")


@asynccontextmanager
async def sql_statements(db: Database) -> AsyncIterator[list[str]]:
    seen: list[str] = []
    logged: list[Any] = []

    def on_cursor(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    def on_query(record: Any) -> None:
        if not any(mark in record.query for mark in ASYNCPG_INTROSPECTION):
            seen.append(record.query)

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        driver.add_query_logger(on_query)
        logged.append(driver)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_cursor)
    event.listen(engine.pool, "checkout", on_checkout)
    try:
        yield seen
        await asyncio.sleep(0)  # asyncpg calls its query loggers soon after each query, not in it
    finally:
        event.remove(engine, "before_cursor_execute", on_cursor)
        event.remove(engine.pool, "checkout", on_checkout)
        for driver in logged:
            driver.remove_query_logger(on_query)
