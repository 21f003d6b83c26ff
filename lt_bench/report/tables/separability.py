"""Feature separability of the test features: NC1, intra/inter distance, silhouette, kNN accuracy
and the few-shot centroid distance, per data set @ ratio."""

from __future__ import annotations

import pandas as pd

from lt_bench.report.tables.face import ReportContext, table
from lt_bench.report.tables.grid import Table, dataset_table

SEPARABILITY_COLUMNS = {  # key: (header, which is best)
    "nc1": ("NC1", "min"),
    "intra_inter_ratio": ("Intra/Inter", "min"),
    "silhouette": ("Silhouette", "max"),
    "knn_accuracy": ("kNN acc.", "max"),
    "centroid_distance.few": ("Centroid dist. (few)", "min"),
}


@table("separability_table", position=20)
def separability_table(runs: pd.DataFrame, context: ReportContext | None = None) -> Table | None:
    """Separability of the test features (mean ± std over seeds, 3 digits; plain values, not %):
    NC1 and the intra/inter distance ratio (lower is better), silhouette and kNN accuracy (a
    fraction; higher is better), the few-shot centroid distance (lower is better), per data set
    @ ratio. None when no run is done. ``context`` is not needed (the registry's face)."""
    return dataset_table(
        runs,
        "Feature separability",
        [(key, header) for key, (header, _) in SEPARABILITY_COLUMNS.items()],
        {key: best for key, (_, best) in SEPARABILITY_COLUMNS.items()},
        digits=3,
    )
