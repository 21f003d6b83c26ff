"""A tuned study's search, trial by trial (``<runs_dir>/tune/tuning.json``): tuning.md and
tuning.csv, no LaTeX form."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from lt_bench.errors import UserError
from lt_bench.report.tables.face import ReportContext, table
from lt_bench.study import tune


@dataclass
class TuningTable:
    record: dict  # tuning.json as tune.write_record wrote it
    title: str = "Tuning"

    def markdown(self) -> str:
        return tune.record_markdown(self.record)

    def latex(self) -> None:
        return None

    def frame(self) -> pd.DataFrame:
        return tune.record_frame(self.record)

    def extra_csv(self) -> dict[str, pd.DataFrame]:
        return {}


@table("tuning", position=60)
def tuning_table(runs: pd.DataFrame, context: ReportContext) -> TuningTable | None:
    path = tune.tuning_dir(context.runs_dir) / "tuning.json"
    if not path.exists():  # not a tuned study
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(
            f"{path} is damaged ({type(err).__name__}); run the study's tuning again"
        ) from err
    return TuningTable(record)
