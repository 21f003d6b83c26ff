"""Report tables, one file each: a function ``make(runs, context) -> table | None`` registered with
``@table("<name>", position=...)`` (see :mod:`.face`). Every module of this package is imported
here, so a new table is one new file: ``write_report`` and the tests that sweep :data:`TABLES`
pick it up."""

from __future__ import annotations

import importlib
import pkgutil

from lt_bench.report.tables.centroid import centroid_table
from lt_bench.report.tables.face import (
    TABLES,
    ReportContext,
    ReportTable,
    Shown,
    registered_tables,
    table,
)
from lt_bench.report.tables.grid import Table
from lt_bench.report.tables.main import main_table
from lt_bench.report.tables.ratio import ratio_table
from lt_bench.report.tables.separability import separability_table

__all__ = [
    "TABLES",
    "ReportContext",
    "ReportTable",
    "Shown",
    "Table",
    "centroid_table",
    "main_table",
    "ratio_table",
    "registered_tables",
    "separability_table",
    "table",
]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
