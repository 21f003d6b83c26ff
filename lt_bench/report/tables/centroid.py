"""Centroid bias by shot group: how far the centres a method pulls towards are from the test class
means."""

from __future__ import annotations

import pandas as pd

from lt_bench.report.tables.face import ReportContext, table
from lt_bench.report.tables.grid import Table, dataset_table

CENTROID_GROUPS = {"many": "Many", "medium": "Medium", "few": "Few"}


@table("centroid_table", position=30)
def centroid_table(runs: pd.DataFrame, context: ReportContext | None = None) -> Table | None:
    """The distance between the centres a method pulls towards (its centroids: centres,
    prototypes, anchors) and the test class means, mean over the group's classes (feature-space
    units, mean ± std over seeds), per shot group and data set @ ratio. Methods without
    centroids (none) show –; lower is closer. None when no run is done."""
    columns = [(f"centroid_distance.{g}", header) for g, header in CENTROID_GROUPS.items()]
    return dataset_table(
        runs,
        "Centroid bias by shot group (distance of the method's centroids to the class means)",
        columns,
        {key: "min" for key, _ in columns},
        digits=3,
    )
