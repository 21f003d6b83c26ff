"""The mean ± std grid every per-data-set table shares: cells over seeds (mean and sample standard
deviation), best in bold, as Markdown (README-ready), LaTeX (booktabs) and CSV, each with its
caption (the shot grouping, what ± is: :mod:`.captions`) and one footnote per distinct warning
(:mod:`lt_bench.report.notes`); and the helpers that fill it from the runs DataFrame. Rows and
columns carry their display names (:mod:`lt_bench.report.labels`); numbers carry a real minus
sign (:mod:`lt_bench.report.typeset`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pandas as pd

from lt_bench.report.collect import check_one_grouping
from lt_bench.report.notes import footnote, grouped_warnings
from lt_bench.report.tables.captions import (
    empty_group_caption,
    grouping_caption,
    shot_group_of,
    spread_caption,
)
from lt_bench.report.typeset import DASH, number, tex, tex_caption


@dataclass
class Table:
    """Cells keyed by (row label, column group, column name): (mean, std, n)."""

    title: str
    rows: list[str]
    groups: list[str]
    columns: list[tuple[str, str]]  # (metric key, header)
    cells: dict
    best: dict  # (group, metric) -> "max" | "min"
    scale: float = 1.0  # 100 for accuracies shown in percent
    digits: int = 1
    notes: dict = field(default_factory=dict)  # row -> warning sentences of its runs (marked †)
    settings: dict = field(default_factory=dict)  # (row, group) -> the row's settings there
    caption: list[str] = field(default_factory=list)  # sentences under the table (md and tex)
    grouping: str | None = None  # the shot grouping of its Many/Medium/Few columns (CSV column)
    column_labels: dict = field(default_factory=dict)  # column group -> its display name

    def label(self, row: str) -> str:
        """The row's shown label: marked † when its runs carry warnings (see the footnotes)."""
        return f"{row} †" if row in self.notes else row

    def column(self, group: str) -> str:
        """The column group's shown name (the study's name for it, else the group itself)."""
        return self.column_labels.get(group, group)

    def footnotes(self) -> list[str]:
        """Under the table: each distinct warning once, naming the rows it concerns."""
        pairs = [(row, sentence) for row in self.rows for sentence in self.notes.get(row, [])]
        return [footnote(warning) for warning in grouped_warnings(pairs)]

    def cell(self, row: str, group: str, metric: str) -> tuple[float, float, int]:
        """(mean, std, seeds) of the cell, unscaled (fractions for accuracies); (nan, nan, 0)
        when the row has no run there."""
        return self.cells.get((row, group, metric), (math.nan, math.nan, 0))

    def best_rows(self, group: str, metric: str) -> set[str]:
        """The rows with the best mean in the column (ties: all of them); shown in bold."""
        means = {r: self.cell(r, group, metric)[0] for r in self.rows}
        means = {r: m for r, m in means.items() if not math.isnan(m)}
        if not means:
            return set()
        target = (max if self.best[(group, metric)] == "max" else min)(means.values())
        return {r for r, m in means.items() if m == target}

    def text(self, row: str, group: str, metric: str) -> str:
        """The cell as shown: ``mean ± std`` scaled (% for accuracies), – when empty."""
        mean, std, n = self.cell(row, group, metric)
        if n == 0 or math.isnan(mean):
            return DASH
        body = number(mean * self.scale, self.digits)
        return body + (f" ± {number(std * self.scale, self.digits)}" if n > 1 else "")

    def seeds(self, row: str, group: str) -> int:
        """The most seeds behind any cell of the row in the column group."""
        return max((self.cell(row, group, m)[2] for m, _ in self.columns), default=0)

    # -------------------------------------------------------------- renderers

    def markdown(self) -> str:
        """The table in Markdown, its caption and footnotes under it."""
        header = ["Method"] + [
            f"{self.column(g)} {h}" for g in self.groups for _, h in self.columns
        ]
        header.append("Seeds")
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            cells = [self.label(row)]
            for group in self.groups:
                for metric, _ in self.columns:
                    text = self.text(row, group, metric)
                    cells.append(f"**{text}**" if row in self.best_rows(group, metric) else text)
            cells.append("/".join(str(self.seeds(row, g)) for g in self.groups))
            lines.append("| " + " | ".join(cells) + " |")
        caption = "\n" + "\n".join(self.caption) + "\n" if self.caption else ""
        notes = self.footnotes()
        return "\n".join(lines) + "\n" + caption + ("\n" + "\n".join(notes) + "\n" if notes else "")

    def latex(self) -> str:
        """The table as a LaTeX tabular (booktabs), its caption and footnotes under it."""
        ncols = len(self.columns)
        spec = "l" + ("c" * ncols) * len(self.groups) + "c"
        lines = [r"\begin{tabular}{" + spec + "}", r"\toprule"]
        lines.append(
            " & "
            + " & ".join(
                rf"\multicolumn{{{ncols}}}{{c}}{{{tex(self.column(g))}}}" for g in self.groups
            )
            + r" & \\"
        )
        rules = [
            rf"\cmidrule(lr){{{2 + i * ncols}-{1 + (i + 1) * ncols}}}"
            for i in range(len(self.groups))
        ]
        lines.append(" ".join(rules))
        headers = [tex(h) for _ in self.groups for _, h in self.columns]
        lines.append("Method & " + " & ".join(headers) + r" & Seeds \\")
        lines.append(r"\midrule")
        for row in self.rows:
            cells = [tex(row) + (r"$^\dagger$" if row in self.notes else "")]
            for group in self.groups:
                for metric, _ in self.columns:
                    text = tex(self.text(row, group, metric))
                    cells.append(
                        rf"\textbf{{{text}}}" if row in self.best_rows(group, metric) else text
                    )
            cells.append("/".join(str(self.seeds(row, g)) for g in self.groups))
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        if self.caption:  # visible under the table: \input the file inside a table float
            lines.append(
                r"\par\smallskip{\footnotesize " + tex_caption(" ".join(self.caption)) + "}"
            )
        lines += [r"\par{\footnotesize " + tex_caption(note) + "}" for note in self.footnotes()]
        return "\n".join(lines) + "\n"

    def frame(self) -> pd.DataFrame:
        """One record per row, column group and metric: ``mean`` and ``std`` scaled as shown
        (% for accuracies), ``seeds``, ``warnings`` (count), the grouping and the row's settings."""
        records = []
        for row in self.rows:
            for group in self.groups:
                for metric, header in self.columns:
                    mean, std, n = self.cell(row, group, metric)
                    records.append(
                        {
                            "method": row,
                            "group": group,
                            "column": self.column(group),
                            "metric": header,
                            "mean": mean * self.scale,
                            "std": std * self.scale,
                            "seeds": n,
                            "warnings": len(self.notes.get(row, [])),
                            **({"grouping": self.grouping} if self.grouping else {}),
                            **self.settings.get((row, group), {}),
                        }
                    )
        return pd.DataFrame(records)

    def extra_csv(self) -> dict[str, pd.DataFrame]:
        """No further CSV files."""
        return {}


def table_caption(
    done: pd.DataFrame, cells: dict, columns, group_column: str, names: dict | None = None
) -> dict:
    """The caption sentences of a table of ``done`` runs and its grouping: a table with a shot-group
    column states its grouping (refusing runs of two groupings) and its empty groups; every table
    says what ± is. Returns Table's ``caption`` and ``grouping`` keywords."""
    groups = [g for g in (shot_group_of(key) for key, _ in columns) if g is not None]
    caption, grouping = [], None
    if groups:
        grouping = check_one_grouping(done)  # collect refuses a mixture; so do the tables
        empty = empty_group_caption(done, dict.fromkeys(groups), group_column, grouping, names)
        caption.append(grouping_caption(grouping) + (f"; {empty}." if empty else "."))
    spread = spread_caption(n for (_, _, n) in cells.values())
    return {"caption": caption + ([spread] if spread else []), "grouping": grouping}


def aggregate_cells(done: pd.DataFrame, group_column: str, metrics: list[str]) -> dict:
    """(row, group, metric) -> (mean, sample std, seeds) of the runs that have the metric."""
    cells = {}
    for (label, group), runs in done.groupby(["label", group_column], sort=False):
        for metric in metrics:
            values = (
                pd.to_numeric(runs[metric], errors="coerce").dropna()
                if metric in runs
                else pd.Series([], dtype=float)
            )
            n = len(values)
            std = float(values.std(ddof=1)) if n > 1 else 0.0
            cells[(label, str(group), metric)] = (float(values.mean()) if n else math.nan, std, n)
    return cells


def row_settings(done: pd.DataFrame, group_column: str) -> dict:
    """(row, group) -> the full settings of the row's runs there (the CSV carries them)."""
    settings = {}
    for (label, group), runs in done.groupby(["label", group_column], sort=False):
        settings[(label, str(group))] = json.loads(runs["settings"].iloc[0])
    return settings


def warning_notes(done: pd.DataFrame) -> dict[str, list[str]]:
    """Row label -> the distinct warning sentences of its runs, in run order."""
    notes: dict[str, list[str]] = {}
    if "warnings" not in done:
        return notes
    for label, text in zip(done["label"], done["warnings"]):
        for sentence in json.loads(text) if isinstance(text, str) and text else []:
            if sentence not in notes.setdefault(label, []):
                notes[label].append(sentence)
    return {label: sentences for label, sentences in notes.items() if sentences}


def dataset_order(values) -> list:
    """Data sets by name, then by ratio (``cifar10_lt@10`` before ``cifar10_lt@100``)."""
    return sorted(pd.unique(values), key=lambda v: (str(v).split("@")[0], _num(v)))


def _num(v) -> float:
    try:
        return float(str(v).split("@")[-1])
    except ValueError:
        return math.inf


def row_order(done: pd.DataFrame) -> list[str]:
    """Baselines first in a fixed order, SAR last, other methods in between; within a method, by
    automatic label, so that a study's display names never reorder the rows."""
    order = {"none": 0, "center": 1, "prototype": 2, "etf": 3, "sar": 9}
    methods = dict(zip(done["label"], done.get("method.name", done["label"])))
    automatic = dict(zip(done["label"], done.get("auto_label", done["label"])))
    return sorted(
        pd.unique(done["label"]),
        key=lambda label: (order.get(str(methods[label]), 5), str(automatic[label]), label),
    )


def column_names(done: pd.DataFrame) -> dict:
    """Data set @ ratio -> its display name (``dataset_label``)."""
    if "dataset_label" not in done:
        return {}
    return {str(d): str(name) for d, name in zip(done["dataset"], done["dataset_label"])}


def dataset_table(
    runs: pd.DataFrame,
    title: str,
    columns: list[tuple[str, str]],
    best: dict[str, str],
    scale: float = 1.0,
    digits: int = 1,
) -> Table | None:
    """A table with one column group per data set @ ratio and ``columns`` (metric key, header) in
    each, best ``best[metric]`` ("max" or "min") in bold; None when no run is done."""
    done = runs[runs.status == "done"]
    if done.empty:
        return None
    groups = [str(g) for g in dataset_order(done["dataset"])]
    cells = aggregate_cells(done, "dataset", [key for key, _ in columns])
    names = column_names(done)
    return Table(
        title,
        row_order(done),
        groups,
        columns,
        cells,
        {(g, key): best[key] for g in groups for key, _ in columns},
        scale=scale,
        digits=digits,
        notes=warning_notes(done),
        settings=row_settings(done, "dataset"),
        column_labels=names,
        **table_caption(done, cells, columns, "dataset", names),
    )
