"""The main table: top-1 accuracy overall and per shot group, per data set @ ratio."""

from __future__ import annotations

import pandas as pd

from lt_bench.report.tables.face import ReportContext, table
from lt_bench.report.tables.grid import Table, dataset_table

ACCURACY_COLUMNS = {"top1": "All", "many": "Many", "medium": "Medium", "few": "Few"}


@table("main_table", position=10)
def main_table(runs: pd.DataFrame, context: ReportContext | None = None) -> Table | None:
    """Top-1 test accuracy in % (mean ± std over seeds), overall and per shot group (Many,
    Medium, Few), one row per label and one column group per data set @ ratio, of the done runs
    of ``runs`` (:func:`collect`'s frame); the best mean per column in bold. None when no run is
    done. ``context`` is not needed (the registry's face)."""
    return dataset_table(
        runs,
        "Top-1 accuracy (%)",
        list(ACCURACY_COLUMNS.items()),
        {key: "max" for key in ACCURACY_COLUMNS},
        scale=100,
    )
