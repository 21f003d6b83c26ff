"""Paired comparisons: each row against its baseline, seed by seed, and the IQM across data sets,
shown only where there are enough tasks and runs (the statistics and the rule are in
:mod:`lt_bench.report.compare`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from lt_bench.report import compare
from lt_bench.report.tables.face import ReportContext, table
from lt_bench.report.tables.grid import column_names


@dataclass
class ComparisonTable:
    """Each row against its baseline, paired by seed, per data set and metric (differences in
    percentage points), and per row across data sets: the IQM of normalised top-1 and the
    probability of improvement, with intervals where there are enough tasks and runs."""

    compared: pd.DataFrame  # one record per (data set, row, metric)
    aggregate: pd.DataFrame  # per row, over all data sets: IQM of normalised top-1, P(improvement)
    tasks: int = 0  # the data sets @ ratio of the done runs
    columns: dict = field(default_factory=dict)  # data set @ ratio -> its display name
    title: str = "Paired comparisons"

    def markdown(self) -> str:
        """The comparisons and the aggregate as Markdown."""
        return compare.comparison_markdown(self.compared, self.aggregate, self.columns, self.tasks)

    def latex(self) -> str:
        """The comparisons as a LaTeX tabular."""
        return compare.comparison_latex(self.compared, self.columns)

    def frame(self) -> pd.DataFrame:
        """One record per (data set, row, metric): :func:`lt_bench.report.compare.comparisons`."""
        return self.compared

    def extra_csv(self) -> dict[str, pd.DataFrame]:
        """``comparison_aggregate.csv``: per row, across data sets (:func:`compare.aggregates`)."""
        return {"comparison_aggregate.csv": self.aggregate}


@table("comparison_table", position=50)
def comparison_table(runs: pd.DataFrame, context: ReportContext) -> ComparisonTable | None:
    """Paired comparisons of the done runs of ``runs`` with ``context.baseline`` (None: each
    row's own ``none`` row with the same loss and settings; an unknown one is a UserError).
    None when no run is done."""
    compared = compare.comparisons(runs, context.baseline)  # refuses an unknown baseline
    done = runs[runs.status == "done"]
    if done.empty:
        return None
    aggregate = compare.aggregates(runs, context.baseline)
    return ComparisonTable(compared, aggregate, done.dataset.nunique(), column_names(done))
