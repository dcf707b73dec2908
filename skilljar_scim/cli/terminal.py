"""Rich rendering for a terminal: only ever given `Text`, on a console with markup and emoji off.

output.py loads this module only when it renders for a terminal: importing rich's console,
table and panel costs about a third of a command's start-up, and a pipe never needs them.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def console(stderr: bool = False) -> Console:
    """Return a console that prints data as it is: no markup, no emoji codes, no highlighting."""
    return Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False, emoji=False)


ATTENTION = "bold red"  # a cell that needs attention (output.Attention); NO_COLOR keeps only the bold


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[tuple[str, bool]]]) -> None:
    """Print a table of (already-shown string, needs attention) cells (see output.shown) on stdout."""
    grid = Table(title=Text(title), title_justify="left")
    for index, column in enumerate(columns):
        # The first column is an identifier people copy: never wrap it.
        grid.add_column(Text(column), overflow="fold", no_wrap=index == 0)
    for row in rows:
        grid.add_row(*(Text(cell, style=ATTENTION if marked else "") for cell, marked in row))
    console().print(grid)


def panel(lines: Sequence[str], title: str) -> None:
    """Print a boxed notice of already-shown strings on stderr."""
    body = Text("\n").join(Text(line) for line in lines)
    console(stderr=True).print(Panel(body, title=Text(title), border_style="yellow", expand=False))


@contextmanager
def status(message: str) -> Iterator[None]:
    """Show a spinner with `message` on stderr while the block runs; clear it after."""
    with console(stderr=True).status(Text(message)):
        yield
