"""The settings behind every row label: for each row, every setting that varies among the rows
(:func:`_shown` says which), and every value tuned for a row (marked ‡), so that the labels can stay
short and nothing is hidden.
settings.md and settings.tex show values with 4 significant digits; settings.csv holds them as the
runs' configs do, one line per row and data set @ ratio."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from lt_bench.config import LABEL_KEYS, run_defaults
from lt_bench.report.labels import setting_text, short_value
from lt_bench.report.tables.face import ReportContext, table
from lt_bench.report.tables.grid import column_names, dataset_order, row_order
from lt_bench.report.typeset import DASH, tex, tex_caption

TUNED = "‡"
COLUMN_KEYS = ("data.name", "data.ratio")  # they make the columns, not the rows
CAPTION = (
    "Every setting that varies among the rows (an option only some rows have: where one of them "
    f"sets it to other than its default), and every tuned value ({TUNED}: chosen for the row on "
    "validation by the study's search, tune/tuning.json); –: the row has no such option. Values "
    "with 4 significant digits (settings.csv holds them in full)."
)


@dataclass
class SettingsTable:
    """Each row's settings per data set: the keys that vary, are tuned or differ from their
    defaults (as setting texts); tuned values marked."""

    rows: list[str]
    keys: list[str]
    values: dict  # (row, data set) -> {key: setting text}
    tuned: dict  # (row, data set) -> the keys tuned there
    datasets: list[str]  # in column order
    columns: dict  # data set -> its display name
    title: str = "Settings"

    def text(self, row: str, key: str) -> str:
        """A row's value of ``key``: one value, or each data set's where they differ."""
        shown = {}
        for dataset in self.datasets:
            if (row, dataset) in self.values:
                value = self.values[(row, dataset)].get(key)
                tuned = key in self.tuned[(row, dataset)]
                text = DASH if value is None else short_value(value) + (TUNED if tuned else "")
                shown.setdefault(text, []).append(self.columns.get(dataset, dataset))
        if len(shown) == 1:
            return next(iter(shown))
        return "; ".join(f"{text} ({', '.join(where)})" for text, where in shown.items())

    def markdown(self) -> str:
        """The table in Markdown, its caption under it."""
        lines = ["| Row | " + " | ".join(self.keys) + " |", "|" + "---|" * (len(self.keys) + 1)]
        for row in self.rows:
            lines.append(f"| {row} | " + " | ".join(self.text(row, k) for k in self.keys) + " |")
        return "\n".join(lines) + "\n\n" + CAPTION + "\n"

    def latex(self) -> str:
        """The table as a LaTeX tabular (booktabs), its caption under it."""
        lines = [r"\begin{tabular}{l" + "l" * len(self.keys) + "}", r"\toprule"]
        lines.append("Row & " + " & ".join(tex(k) for k in self.keys) + r" \\")
        lines.append(r"\midrule")
        for row in self.rows:
            cells = [tex(row)] + [tex(self.text(row, k)) for k in self.keys]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        lines.append(r"\par\smallskip{\footnotesize " + tex_caption(CAPTION) + "}")
        return "\n".join(lines) + "\n"

    def frame(self) -> pd.DataFrame:
        """One record per row and data set: ``row``, ``dataset``, each key's value, ``tuned``
        (the tuned keys, comma-separated)."""
        records = []
        for row in self.rows:
            for dataset in self.datasets:
                if (row, dataset) in self.values:
                    values = self.values[(row, dataset)]
                    records.append(
                        {
                            "row": row,
                            "dataset": dataset,
                            **{k: values.get(k) for k in self.keys},
                            "tuned": ", ".join(
                                k for k in self.keys if k in self.tuned[(row, dataset)]
                            ),
                        }
                    )
        return pd.DataFrame(records)

    def extra_csv(self) -> dict[str, pd.DataFrame]:
        """No further CSV files."""
        return {}


def _shown(key: str, values: dict, tuned: dict, defaults: dict) -> bool:
    """Whether the table has a column for ``key``: tuned for some row, two or more values among
    the rows that have it, or an option only some rows have that one of them sets to other than
    its default. A value every row shares is the study's recipe, not a row's setting."""
    held = {i: setting[key] for i, setting in values.items() if key in setting}
    if any(key in keys for keys in tuned.values()) or len(set(held.values())) > 1:
        return True
    some_only = len(held) < len(values)
    return some_only and any(value != defaults[i].get(key) for i, value in held.items())


def _defaults_as_text(run: pd.Series) -> dict:
    """The run's option defaults as the settings hold them (text)."""
    stage = run.get("stage.name")
    values = run_defaults(
        str(run.get("method.name")),
        str(run.get("loss.name")),
        stage if isinstance(stage, str) else None,
    )
    return {key: setting_text(value) for key, value in values.items()}


@table("settings", position=15)
def settings_table(
    runs: pd.DataFrame, context: ReportContext | None = None
) -> SettingsTable | None:
    """Each row's settings (:class:`SettingsTable`) of the done runs of ``runs``: the values that
    vary, were tuned for the row, or differ from their defaults. None when no done run exists or
    no setting varies and none was tuned."""
    done = runs[runs.status == "done"]
    if done.empty:
        return None
    values, tuned, defaults = {}, {}, {}
    for (row, dataset), group in done.groupby(["label", "dataset"], sort=False):
        first = group.iloc[0]
        values[(row, str(dataset))] = json.loads(first["settings"])
        defaults[(row, str(dataset))] = _defaults_as_text(first)
        tuned_text = first.get("tuned") if "tuned" in group else None
        tuned[(row, str(dataset))] = (
            set(json.loads(tuned_text)) if isinstance(tuned_text, str) else set()
        )
    keys = sorted({k for setting in values.values() for k in setting} - set(COLUMN_KEYS))
    kept = [k for k in keys if _shown(k, values, tuned, defaults)]
    if not kept:
        return None
    first_keys = [k for k in LABEL_KEYS if k in kept]
    ordered = first_keys + [k for k in kept if k not in first_keys]
    return SettingsTable(
        row_order(done),
        ordered,
        values,
        tuned,
        [str(d) for d in dataset_order(done["dataset"])],
        column_names(done),
    )
