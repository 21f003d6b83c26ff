"""Top-1 accuracy by imbalance ratio: one column per data set and ratio."""

from __future__ import annotations

import pandas as pd

from lt_bench.report.tables.face import ReportContext, table
from lt_bench.report.tables.grid import (
    Table,
    aggregate_cells,
    column_names,
    row_order,
    row_settings,
    table_caption,
    warning_notes,
)


@table("ratio_table", position=40)
def ratio_table(runs: pd.DataFrame, context: ReportContext | None = None) -> Table | None:
    """Top-1 test accuracy in % (mean ± std over seeds) of the done runs of ``runs``, one
    column per data set and imbalance ratio (ascending): how each row degrades as the tail
    thins. None when no run is done. ``context`` is not needed (the registry's face)."""
    done = runs[runs.status == "done"].copy()
    if done.empty:
        return None
    done["ratio_label"] = done["split_ratio"].map(lambda r: f"{r:g}")
    datasets = sorted(pd.unique(done["data.name"]))
    done["ratio_group"] = done["data.name"] + " ratio " + done["ratio_label"]
    groups = [
        g
        for d in datasets
        for g in sorted(pd.unique(done.loc[done["data.name"] == d, "ratio_group"]), key=_ratio_key)
    ]
    columns = [("top1", "All")]
    cells = aggregate_cells(done, "ratio_group", ["top1"])
    # A column the study names (labels.json) shows its name; the others "<data set> ratio <r>".
    named = column_names(done)
    names = {
        group: named[dataset]
        for group, dataset in zip(done["ratio_group"], done["dataset"])
        if named.get(dataset, dataset) != dataset
    }
    return Table(
        "Top-1 accuracy (%) by imbalance ratio",
        row_order(done),
        groups,
        columns,
        cells,
        {(g, "top1"): "max" for g in groups},
        scale=100,
        notes=warning_notes(done),
        settings=row_settings(done, "ratio_group"),
        column_labels=names,
        **table_caption(done, cells, columns, "ratio_group"),  # top-1 only: no grouping to state
    )


def _ratio_key(label: str) -> float:
    return float(label.rsplit(" ", 1)[-1])
