"""The face every report table has, and the registry ``write_report`` iterates.

A table is one function ``make(runs, context) -> Shown | None``, registered with
``@table("<name>", position=...)``: the report writes ``<name>.md``, ``<name>.tex`` (when the table
has a LaTeX form), ``<name>.csv`` and the table's extra CSV files, and a ``## <title>`` section of
report.md, in the order of ``position``. A table with nothing to show returns None and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import pandas as pd

from lt_bench.registry import Registry


@dataclass(frozen=True)
class ReportContext:
    """What a table may need besides the runs: the runs folder and the chosen baseline row."""

    runs_dir: Path
    baseline: str | None = None  # the row every other row is compared with (None: its own none row)


class Shown(Protocol):
    """A built table: its report.md heading, its renderings and its CSV frames."""

    title: str

    def markdown(self) -> str:
        """The table and its caption in Markdown: ``<name>.md`` and its report.md section."""
        ...

    def latex(self) -> str | None:
        """``<name>.tex``; None: the table has no .tex."""
        ...

    def frame(self) -> pd.DataFrame:
        """``<name>.csv``."""
        ...

    def extra_csv(self) -> dict[str, pd.DataFrame]:
        """Further CSV files, by file name."""
        ...


@dataclass(frozen=True)
class ReportTable:
    """One registered table: its file stem, its place in report.md and its maker."""

    name: str
    position: int
    make: Callable[[pd.DataFrame, ReportContext], Shown | None]


TABLES: Registry[ReportTable] = Registry("table")


def table(name: str, position: int):
    """Register ``make(runs, context)`` as the table written to ``<name>.*``; sections of report.md
    follow ``position`` (main table 10, ..., tuning 60). Returns ``make`` unchanged."""

    def decorator(make):
        TABLES.register(name)(ReportTable(name, position, make))
        return make

    return decorator


def registered_tables() -> list[ReportTable]:
    """Every registered table, in report order."""
    return sorted((TABLES.get(name) for name in TABLES), key=lambda t: (t.position, t.name))
