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
    compared: pd.DataFrame  # one record per (data set, row, metric)
    aggregate: pd.DataFrame  # per row, over all data sets: IQM of normalised top-1, P(improvement)
    tasks: int = 0  # the data sets @ ratio of the done runs
    columns: dict = field(default_factory=dict)  # data set @ ratio -> its display name
    title: str = "Paired comparisons"

    def markdown(self) -> str:
        return compare.comparison_markdown(self.compared, self.aggregate, self.columns, self.tasks)

    def latex(self) -> str:
        return compare.comparison_latex(self.compared, self.columns)

    def frame(self) -> pd.DataFrame:
        return self.compared

    def extra_csv(self) -> dict[str, pd.DataFrame]:
        return {"comparison_aggregate.csv": self.aggregate}


@table("comparison_table", position=50)
def comparison_table(runs: pd.DataFrame, context: ReportContext) -> ComparisonTable | None:
    compared = compare.comparisons(runs, context.baseline)  # refuses an unknown baseline
    done = runs[runs.status == "done"]
    if done.empty:
        return None
    aggregate = compare.aggregates(runs, context.baseline)
    return ComparisonTable(compared, aggregate, done.dataset.nunique(), column_names(done))
