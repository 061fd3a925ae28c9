"""What the `coalition` commands show a person: aligned tables on stdout, progress on stderr.

rich does the alignment (it measures wide and combining characters, which padding with f-strings
gets wrong for names such as "Café Lumen") and draws the progress. Two promises to scripts:

- a table printed into a pipe or a file is plain text, never wrapped or cut to a terminal's width,
  without colour codes or trailing blanks, so `grep` and `awk` see one row per line;
- progress is drawn only when stderr is a terminal: piped output, cron mail and tests see nothing
  extra, and stdout (what a script reads) never carries it.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

# Wide enough for any row we print: a table in a pipe is never wrapped.
UNBOUNDED_WIDTH = 10_000


@dataclass(frozen=True)
class Column:
    header: str
    justify: Literal["left", "right"] = "left"


def table(columns: Sequence[Column | str], rows: Iterable[Sequence[object]]) -> str:
    """The rows as aligned plain text (a header, a rule, one line per row), no trailing newline."""
    grid = _grid(columns, rows)
    out = io.StringIO()
    Console(file=out, width=UNBOUNDED_WIDTH, color_system=None, highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def print_table(columns: Sequence[Column | str], rows: Iterable[Sequence[object]]) -> None:
    """Prints an aligned table on stdout: styled for a terminal, plain text otherwise."""
    if sys.stdout.isatty():
        Console(highlight=False).print(_grid(columns, rows, header_style="bold"))
    else:
        print(table(columns, rows))


def _grid(columns: Sequence[Column | str], rows: Iterable[Sequence[object]], header_style: str = "") -> Table:
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style=header_style)
    for column in columns:
        spec = Column(column) if isinstance(column, str) else column
        grid.add_column(spec.header, justify=spec.justify, overflow="fold")
    for row in rows:
        # Cells are data, never rich markup: a partner named "[bold]" prints as such.
        grid.add_row(*("" if cell is None else escape(str(cell)) for cell in row))
    return grid


class Steps:
    """Progress through a command's steps; does nothing when stderr is not a terminal."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task
        self._started = False

    def step(self, description: str) -> None:
        """A new step begins (the previous one is done)."""
        if self._progress is not None and self._task is not None:
            if self._started:
                self._progress.advance(self._task)
            self._started = True
            self._progress.update(self._task, description=description)

    def note(self, description: str) -> None:
        """What the current step is at (e.g. rows so far), without finishing it."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)


@contextmanager
def progress(total: int | None = None) -> Iterator[Steps]:
    """A spinner (and a bar of `total` steps when known) with elapsed time, on stderr, cleared
    when the command is done; a no-op when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield Steps(None, None)
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    display = Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    with display:
        task = display.add_task("", total=total)
        yield Steps(display, task)


@contextmanager
def counter(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A bar of `total` items on stderr (items done, rate, elapsed); yields `advance(n)`. A no-op
    when stderr is not a terminal, like `progress`."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    display = Progress(
        TextColumn(escape(description)),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with display:
        task = display.add_task(description, total=total)
        yield lambda n: display.advance(task, n)
