"""Paired comparisons: each row against its baseline, seed by seed, and the IQM across data sets
(the statistics are in :mod:`lt_bench.report.compare`)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lt_bench.report import compare
from lt_bench.report.tables.face import ReportContext, table


@dataclass
class ComparisonTable:
    compared: pd.DataFrame  # one record per (data set, row, metric)
    aggregate: pd.DataFrame  # per row, over all data sets: IQM of normalised top-1, P(improvement)
    title: str = "Paired comparisons"

    def markdown(self) -> str:
        return compare.comparison_markdown(self.compared, self.aggregate)

    def latex(self) -> str:
        return compare.comparison_latex(self.compared)

    def frame(self) -> pd.DataFrame:
        return self.compared

    def extra_csv(self) -> dict[str, pd.DataFrame]:
        return {"comparison_aggregate.csv": self.aggregate}


@table("comparison_table", position=50)
def comparison_table(runs: pd.DataFrame, context: ReportContext) -> ComparisonTable | None:
    compared = compare.comparisons(runs, context.baseline)  # refuses an unknown baseline
    if runs[runs.status == "done"].empty:
        return None
    return ComparisonTable(compared, compare.aggregates(runs, context.baseline))
