"""A tuned study's search, trial by trial (``<runs_dir>/tune/tuning.json``): tuning.md and
tuning.csv, no LaTeX form."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lt_bench.report.checks import tuning_record
from lt_bench.report.tables.face import ReportContext, table
from lt_bench.study import tune


@dataclass
class TuningTable:
    """A tuned study's search (``tune/tuning.json``): each arm's trials and its choice."""

    record: dict  # tuning.json as tune.write_record wrote it
    title: str = "Tuning"

    def markdown(self) -> str:
        """The search as Markdown (:func:`lt_bench.study.tune.record_markdown`)."""
        return tune.record_markdown(self.record)

    def latex(self) -> None:
        """None: the tuning table has no .tex."""
        return None

    def frame(self) -> pd.DataFrame:
        """One record per trial (:func:`lt_bench.study.tune.record_frame`)."""
        return tune.record_frame(self.record)

    def extra_csv(self) -> dict[str, pd.DataFrame]:
        """No further CSV files."""
        return {}


@table("tuning", position=60)
def tuning_table(runs: pd.DataFrame, context: ReportContext) -> TuningTable | None:
    """The tuning record of ``context.runs_dir`` (:class:`TuningTable`); None when the study was
    not tuned. ``runs`` is not needed (the registry's face)."""
    record = tuning_record(context.runs_dir)  # a damaged record is named
    return None if record is None else TuningTable(record)  # None: not a tuned study
