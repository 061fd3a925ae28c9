"""The process's one LISTEN connection (`shared.listening`), against the real server: several
channels on one backend, reconnection after the backend is terminated, and the "applied
everywhere" wait across two listeners (as two gateway processes hold).

Each test names its listeners with an application name of its own, so the gateways other tests of
the session keep running (application name `coalition-listener`) are not counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from shared import sql
from shared.database import Database, _asyncpg_dsn
from shared.listening import LISTENING_BACKENDS, Listener, applied_everywhere

TIMEOUT = 0.5  # the listeners' propagation timeout here: short, the tests wait for it


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def notify(db: Database, channel: str, payload: str) -> None:
    """A committed NOTIFY, as a service's transaction sends one."""
    async with sql.connection(db) as conn:
        await conn.execute("SELECT pg_notify($1, $2)", channel, payload)


async def until(condition: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.01)


async def backends(db: Database, name: str) -> int:
    async with sql.connection(db) as conn:
        return int(await LISTENING_BACKENDS.fetchval(conn, name=name))


@pytest.fixture
def name() -> str:
    return unique("coalition-listener-test")


@pytest.fixture
async def listener(db: Database, name: str) -> AsyncIterator[Listener]:
    one = Listener(db, retry_seconds=1.0, application_name=name, propagation_timeout_seconds=TIMEOUT)
    try:
        yield one
    finally:
        await one.stop()


async def test_two_handlers_on_two_channels_share_one_connection(db, listener, name):
    first, second = unique("first"), unique("second")
    heard_first: list[str] = []
    heard_second: list[str] = []
    await listener.subscribe(first, heard_first.append)
    await listener.subscribe(second, heard_second.append)
    await listener.start()
    assert listener.listening.is_set()

    await notify(db, first, "a")
    await notify(db, second, "b")
    await notify(db, first, "c")
    await until(lambda: len(heard_first) == 2 and len(heard_second) == 1, "three notifications")
    assert heard_first == ["a", "c"]  # commit order, each channel to its own handler
    assert heard_second == ["b"]
    assert await backends(db, name) == 1


async def test_it_reconnects_after_its_backend_is_terminated_and_catches_subscribers_up(db, listener, name):
    channel = unique("reconnect")
    heard: list[str] = []
    caught_up: list[int] = []  # the connection number each on_reconnect saw
    await listener.subscribe(
        channel, heard.append, on_reconnect=lambda: caught_up.append(listener.connections)
    )
    await listener.start()
    assert caught_up == [1]  # the first connection too: what came before it was not heard
    first_backend = listener.backend_pid

    async with sql.connection(db) as conn:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", first_backend)
    await until(lambda: not listener.listening.is_set(), "noticing the connection was cut")
    await notify(db, channel, "missed")  # nobody listens: lost, which is why on_reconnect exists
    assert listener.connections == 1, "reconnected before the notification: nothing was missed"

    await asyncio.wait_for(listener.listening.wait(), 10)
    assert listener.connections == 2
    assert caught_up == [1, 2]
    assert listener.backend_pid not in (None, first_backend)
    await notify(db, channel, "later")
    await until(lambda: heard == ["later"], "a notification after the reconnection")
    assert await backends(db, name) == 1


async def test_subscribing_to_a_running_listener_is_in_force_on_return(db, listener):
    late, other = unique("late"), unique("other")
    heard: list[str] = []
    heard_other: list[str] = []
    caught_up: list[str] = []
    await listener.subscribe(other, heard_other.append)
    await listener.start()

    subscription = await listener.subscribe(late, heard.append, on_reconnect=lambda: caught_up.append("x"))
    assert caught_up == ["x"]
    await notify(db, late, "1")  # sent right after subscribe returned: heard
    await until(lambda: heard == ["1"], "a notification on a channel subscribed after start")

    await listener.unsubscribe(subscription)
    await notify(db, late, "2")
    await notify(db, other, "after")
    # One connection delivers in commit order: once "after" is in, "2" would have been too.
    await until(lambda: heard_other == ["after"], "the later notification on the other channel")
    assert heard == ["1"]


@pytest.mark.logs_traceback
async def test_a_failing_handler_neither_deafens_the_others_nor_acknowledges(db, listener, caplog):
    channel = unique("failing")
    heard: list[str] = []

    def broken(payload: str) -> str:
        raise ValueError("a bug in one subscriber")

    await listener.subscribe(channel, broken)
    await listener.subscribe(channel, lambda payload: heard.append(payload) or payload)
    await listener.start()
    await notify(db, channel, "n1")
    await until(lambda: heard == ["n1"], "the healthy handler")
    assert not await applied_everywhere(db, "n1")  # applied by one handler of two: not acknowledged
    assert listener.acknowledgements("n1") == frozenset()
    assert "a handler on" in caplog.text


async def test_applied_everywhere_waits_for_every_listener(db, database_url, listener, name, caplog):
    """Two listeners on two Database objects, as two gateway processes: the wait ends when the
    last one acknowledges; one that does not answer (or is gone) costs at most the timeout."""
    channel = unique("applied")
    other_db = Database(database_url, pool_size=2)
    other = Listener(other_db, application_name=name, propagation_timeout_seconds=TIMEOUT)
    applied: list[str] = []
    applied_there: list[str] = []

    def there(notice: str) -> str | None:  # the other process, which stays silent on "deaf-" ones
        applied_there.append(notice)
        return None if notice.startswith("deaf-") else notice

    await listener.subscribe(channel, lambda notice: applied.append(notice) or notice)
    await other.subscribe(channel, there)
    await listener.start()
    await other.start()
    try:
        assert await backends(db, name) == 2

        notice = unique("n")
        await notify(db, channel, notice)
        started = time.monotonic()
        assert await applied_everywhere(db, notice)
        assert time.monotonic() - started < TIMEOUT  # acknowledged, not timed out
        assert notice in applied and notice in applied_there
        assert listener.acknowledgements(notice) == {listener.backend_pid, other.backend_pid}

        deaf = unique("deaf-n")
        await notify(db, channel, deaf)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="coalition.listening"):
            assert not await applied_everywhere(db, deaf, bound="the test's fallback covers the others")
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 0.5
        assert listener.acknowledgements(deaf) == {listener.backend_pid}
        assert f"notice {deaf} applied by 1 of 2 listening processes in time" in caplog.text
        assert "the test's fallback covers the others" in caplog.text

        await other.stop()  # its backend may still be counted for a moment: bounded either way
        stopped = unique("n")
        await notify(db, channel, stopped)
        started = time.monotonic()
        await applied_everywhere(db, stopped)
        assert time.monotonic() - started < TIMEOUT + 0.5
        assert stopped not in applied_there
        await until_async(lambda: backends(db, name), 1, "the stopped listener's backend to go")
        gone = unique("n")
        await notify(db, channel, gone)
        started = time.monotonic()
        assert await applied_everywhere(db, gone)  # one listener left, one acknowledgement
        assert time.monotonic() - started < TIMEOUT
    finally:
        await other.stop()
        await other_db.dispose()


async def test_a_silent_peer_is_waited_for_no_longer_than_the_timeout(db, listener, name):
    """A listening backend whose process died without the backend noticing yet never answers."""
    channel = unique("silent")
    await listener.subscribe(channel, lambda notice: notice)
    await listener.start()
    dsn, kwargs = _asyncpg_dsn(db.url)
    silent = await asyncpg.connect(dsn, **kwargs, server_settings={"application_name": name})
    try:
        notice = unique("n")
        await notify(db, channel, notice)
        started = time.monotonic()
        assert not await applied_everywhere(db, notice)
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 0.5
        assert listener.acknowledgements(notice) == {listener.backend_pid}
    finally:
        await silent.close()


class FreezingProxy:
    """A TCP relay to the database that can go silent on the connections it carries, as a network
    cut does: nothing is closed, bytes just stop arriving. New connections are relayed again."""

    def __init__(self, url: str):
        parsed = make_url(url)
        socket_dir = parsed.query.get("host")
        self._socket = f"{socket_dir}/.s.PGSQL.{parsed.port or 5432}" if isinstance(socket_dir, str) else None
        self._upstream = (parsed.host or "127.0.0.1", parsed.port or 5432)
        self._url = parsed
        self._frozen: set[asyncio.StreamWriter] = set()
        self._open: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        """The URL that goes through the proxy."""
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return self._url.set(host="127.0.0.1", port=port, query={}).render_as_string(hide_password=False)

    def freeze(self) -> None:
        self._frozen.update(self._open)

    async def close(self) -> None:
        for writer in self._open:
            writer.close()
        if self.server is not None:
            self.server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._socket:
            up_reader, up_writer = await asyncio.open_unix_connection(self._socket)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        self._open += [writer, up_writer]

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, mark: asyncio.StreamWriter
        ) -> None:
            while data := await src.read(65536):
                if mark not in self._frozen:  # frozen: swallowed, like packets into a cut cable
                    dst.write(data)
                    await dst.drain()
            dst.close()

        with contextlib.suppress(OSError):
            await asyncio.gather(pipe(reader, up_writer, writer), pipe(up_reader, writer, writer))


async def test_a_peer_gone_silent_is_found_by_the_health_check(database_url):
    proxy = FreezingProxy(database_url)
    through = Database(await proxy.start(), pool_size=1)
    listener = Listener(through, retry_seconds=0.1, health_check_seconds=0.2, health_timeout_seconds=0.3)
    channel = unique("silent_peer")
    heard: list[str] = []
    caught_up: list[int] = []
    await listener.subscribe(channel, heard.append, on_reconnect=lambda: caught_up.append(1))
    try:
        await listener.start()
        assert listener.connections == 1
        proxy.freeze()  # no error, no close: only the health query can tell
        await until(lambda: listener.connections == 2 and listener.listening.is_set(), "a reconnection")
        assert caught_up == [1, 1]
        await notify(through, channel, "after")  # through the proxy, on a new, unfrozen connection
        await until(lambda: heard == ["after"], "a notification on the new connection")
    finally:
        await listener.stop()
        await proxy.close()
        await through.dispose()


async def test_without_a_running_listener_applied_everywhere_returns_at_once():
    """The command line holds no listener: its changes answer on commit, without a query (this
    database does not even exist)."""
    nowhere = Database("postgresql+asyncpg://nobody@127.0.0.1:1/nowhere", pool_size=1)
    try:
        started = time.monotonic()
        assert not await applied_everywhere(nowhere, "nobody-listens")
        assert time.monotonic() - started < 0.1
    finally:
        await nowhere.dispose()


async def until_async(
    read: Callable[[], Awaitable[object]], expected: object, what: str, seconds: float = 5.0
) -> None:
    deadline = time.monotonic() + seconds
    while (value := await read()) != expected:
        assert time.monotonic() < deadline, f"not within {seconds} s: {what} (last {value!r})"
        await asyncio.sleep(0.02)
