"""Run files across runs as long pandas DataFrames: per-class results and training curves.

``load_per_class(runs_dir)``: one row per run x class, from each run's ``per_class.csv``;
``load_curves(runs_dir)``: one row per run x ``metrics.jsonl`` line (an epoch). Both start with
the run's columns, named as in :func:`~lt_bench.report.collect.collect`'s runs frame where the
name is the same thing (``run_dir`` joins the two), then every column the file holds, as written:
accuracies are fractions in [0, 1], losses the engine's per-image means. Rows are labelled as
the report labels them (:mod:`lt_bench.report.labels`: the study's names where it gives them).

The report's figures read the same files through :func:`read_run_tables` and assemble them with
:func:`with_run_columns`, so a notebook's frame and a figure's curves are one computation.
Nothing here imports torch or matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from lt_bench import rundir
from lt_bench.report.checks import naming_damage
from lt_bench.report.collect import collect
from lt_bench.rundir import RunDir

# The runs frame's column -> its name in a loader's frame, in this order.
RUN_COLUMNS = {
    "run_dir": "run_dir",  # the run folder, relative to the runs folder: joins with collect()
    "label": "label",  # the report's row label
    "dataset": "dataset",  # <data.name>@<ratio>, the report's column
    "seed": "seed",
    "data.name": "data",
    "split_ratio": "ratio",  # the split's own imbalance ratio (largest / smallest class)
    "method.name": "method",
    "loss.name": "loss",
    "stage": "stage",  # a second stage's display name (crt, lws, ...); None for training runs
}


def read_per_class(run: RunDir) -> pd.DataFrame | None:
    """The run's ``per_class.csv`` as written (None when it has none); a damaged one is named."""
    path = run / rundir.PER_CLASS
    if not path.exists():
        return None
    with naming_damage(path):
        return pd.read_csv(path)


def is_training_epoch(row: dict) -> bool:
    """A ``metrics.jsonl`` line of a training epoch (epochs count from 1 and log ``loss/total``);
    a second stage's lines without epochs (tau_norm's curve: epoch 0) are not."""
    epoch = row.get("epoch")
    return isinstance(epoch, int) and epoch >= 1 and "loss/total" in row


def read_history(run: RunDir, training_only: bool = False) -> pd.DataFrame | None:
    """The run's ``metrics.jsonl``, one row per line (None when it has no lines, or none that are
    training epochs with ``training_only``); a damaged line is named."""
    rows = run.metrics()
    if training_only:
        rows = [row for row in rows if is_training_epoch(row)]
    return pd.DataFrame(rows) if rows else None


def read_run_tables(
    runs: pd.DataFrame, runs_dir: str | Path, training_only: bool = False
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Per run folder of ``runs`` (a frame of :func:`collect`): its per-class table and its
    metrics history, each where the run has one (``training_only``: training epochs only)."""
    per_class, histories = {}, {}
    for name in runs.run_dir:
        run = RunDir(Path(runs_dir) / name)
        table = read_per_class(run)
        if table is not None:
            per_class[name] = table
        history = read_history(run, training_only)
        if history is not None:
            histories[name] = history
    return per_class, histories


def with_run_columns(runs: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One long frame: for each run of ``runs`` (in its order) that has a table in ``tables``
    (run folder -> frame), the run's :data:`RUN_COLUMNS`, then the table's rows and columns."""
    present = {c: n for c, n in RUN_COLUMNS.items() if c in runs}
    parts = []
    for _, run in runs[runs.run_dir.isin(list(tables))].iterrows():
        part = tables[run.run_dir].copy()
        for column in reversed(list(present)):
            if present[column] not in part:  # a file's own column of that name is kept instead
                part.insert(0, present[column], run[column])
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=list(present.values()))
    return pd.concat(parts, ignore_index=True)


def runs_of(source: str | Path, runs: pd.DataFrame | None = None) -> tuple[pd.DataFrame, Path]:
    """The runs frame and runs folder of ``source``: a runs folder (every run below it), or one
    run folder (a folder holding config.yaml: that run, labelled among the runs of the folder
    above it). ``runs``: the frame :func:`collect` already made of the runs folder, not read again."""
    source = Path(source)
    if (source / rundir.CONFIG).is_file():
        runs_dir = source.parent
        frame = collect(runs_dir) if runs is None else runs
        return frame[frame.run_dir == source.name], runs_dir
    return (collect(source) if runs is None else runs), source


def _select(frame: pd.DataFrame, status: str | None) -> pd.DataFrame:
    return frame if status is None else frame[frame.status == status]


def load_per_class(
    source: str | Path, runs: pd.DataFrame | None = None, status: str | None = "done"
) -> pd.DataFrame:
    """One row per run x class of every ``status`` run (None: every run) under ``source`` (a runs
    folder, or one run folder) that has a ``per_class.csv``: the run's columns (``run_dir``,
    ``label``, ``dataset``, ``seed``, ``data``, ``ratio``, ``method``, ``loss``, ``stage``), then
    per_class.csv's as written: ``class``, ``name``, ``n_train`` (training images of the class),
    ``n_test``, ``group`` (its shot group: many, medium, few), ``accuracy`` (test top-1, a
    fraction in [0, 1]) and the per-class separability statistics. ``runs``: the frame
    :func:`collect` already made of the runs folder (saves reading every config again)."""
    frame, runs_dir = runs_of(source, runs)
    frame = _select(frame, status)
    tables = {}
    for name in frame.run_dir:
        table = read_per_class(RunDir(runs_dir / name))
        if table is not None:
            tables[name] = table
    return with_run_columns(frame, tables)


def load_curves(
    source: str | Path,
    runs: pd.DataFrame | None = None,
    status: str | None = "done",
    training_only: bool = False,
) -> pd.DataFrame:
    """One row per run x ``metrics.jsonl`` line (an epoch) of every ``status`` run (None: every
    run, failed and incomplete ones too) under ``source`` (a runs folder, or one run folder): the
    run's columns (as :func:`load_per_class`), then every logged key as written: ``epoch``,
    ``lr``, ``loss/base`` and ``loss/total`` (per-image means), each regularizer's terms,
    ``train/acc`` (a fraction), ``time_s``, ... A key a run does not log is NaN in its rows.
    ``training_only``: training epochs only (a second stage's lines without epochs left out)."""
    frame, runs_dir = runs_of(source, runs)
    frame = _select(frame, status)
    tables = {}
    for name in frame.run_dir:
        history = read_history(RunDir(runs_dir / name), training_only)
        if history is not None:
            tables[name] = history
    return with_run_columns(frame, tables)
