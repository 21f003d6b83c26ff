"""The numbers behind the report's rliable figures (Agarwal et al., NeurIPS 2021), beside those of
:mod:`lt_bench.report.compare`, which they reuse:

- interval estimates per row: the mean and the IQM of top-1 normalised per task as
  :func:`compare.aggregate_iqm` normalises it (min-max over the row means of each data set @ ratio),
  each with a 95% stratified-bootstrap percentile interval (runs resampled within each task). The
  IQM and its interval are compare's own numbers (the comparison table's); the mean is resampled
  the same way here;
- performance profiles (rliable's ``create_performance_profile`` with its default score
  distribution): the fraction of a row's runs, over all tasks, whose top-1 exceeds each threshold
  tau, with an optional 95% stratified-bootstrap band (rliable's default 2,000 resamples).

As in compare, no interval or band is given with one task or one run per task: resampling one run
gives no spread, and the runs of one task give a band far narrower than a new set of seeds would.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lt_bench.report import compare

PROFILE_RESAMPLES = 2_000  # rliable's create_performance_profile(reps=2000)


def no_interval(runs_per_task: int, tasks: int) -> str | None:
    """Why an interval over runs and tasks would mean nothing here, or None: compare's rule and
    wording, so a figure and the comparison table never disagree."""
    return compare._no_interval(runs_per_task, tasks)


def interval_rule() -> str:
    """What an interval needs, in words."""
    tasks = getattr(compare, "MIN_TASKS", 2)
    runs = getattr(compare, "MIN_RUNS_PER_TASK", 2)
    return f"an interval needs {tasks} or more data sets @ ratio and {runs} or more runs on each"


def normalised_matrices(done: pd.DataFrame) -> tuple[list, dict[str, np.ndarray]]:
    """The tasks and, per row with a rectangular matrix, its top-1 normalised per task by min-max
    over the row means there (0: the worst row, 1: the best), as :func:`compare.aggregate_iqm`."""
    done = done[["dataset", "label", "seed", "top1"]]
    tasks = list(pd.unique(done.dataset))
    means = done.groupby(["dataset", "label"]).top1.mean()
    worst = means.groupby(level=0).min()
    span = (means.groupby(level=0).max() - worst).replace(0, 1.0)
    matrices = {}
    for label in pd.unique(done.label):
        matrix = compare.score_matrix(done, label, tasks)
        if matrix is not None:
            matrices[label] = (matrix - worst[tasks].to_numpy()) / span[tasks].to_numpy()
    return tasks, matrices


def stratified_bootstrap_mean(
    scores: np.ndarray, reps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% percentile interval of the mean of ``scores`` (runs x tasks), runs resampled with
    replacement within each task (rliable's StratifiedBootstrap, as compare's IQM interval)."""
    scores = np.asarray(scores, dtype=float)
    runs, tasks = scores.shape
    picks = rng.integers(0, runs, size=(reps, runs, tasks))
    values = scores[picks, np.arange(tasks)].reshape(reps, -1).mean(axis=1)
    low, high = np.percentile(values, compare.PERCENTILES)
    return float(low), float(high)


def interval_estimates(
    done: pd.DataFrame, reps: int = compare.RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """Per row: mean and IQM of normalised top-1 over all its runs and tasks, each with its 95%
    stratified-bootstrap interval (NaN with the reason in ``note`` where none is meaningful). The
    IQM columns are :func:`compare.aggregate_iqm`'s (same resamples: the comparison table's)."""
    aggregate = compare.aggregate_iqm(done, reps, seed)
    _, matrices = normalised_matrices(done[done.status == "done"] if "status" in done else done)
    rng = np.random.default_rng(seed)
    records = []
    for record in aggregate.to_dict("records"):
        matrix = matrices.get(record["row"])
        note = record.get("note")
        note = note if isinstance(note, str) and note else None
        mean = low = high = math.nan
        if matrix is not None:
            mean = float(matrix.mean())
            if note is None:
                low, high = stratified_bootstrap_mean(matrix, reps, rng)
        records.append(
            {
                "row": record["row"],
                "mean": mean,
                "mean_low": low,
                "mean_high": high,
                "iqm": record["iqm"],
                "iqm_low": record["iqm_low"],
                "iqm_high": record["iqm_high"],
                "note": note,
            }
        )
    return pd.DataFrame(records)


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rliable's score distribution: for each tau, the fraction of all ``scores`` (every run on
    every task) greater than tau."""
    scores = np.asarray(scores, dtype=float).ravel()
    taus = np.asarray(taus, dtype=float)
    return (scores[None, :] > taus[:, None]).mean(axis=1)


def profile_band(
    scores: np.ndarray, taus: np.ndarray, reps: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """95% stratified-bootstrap percentile band of :func:`performance_profile` at each tau: the
    runs of ``scores`` (runs x tasks) resampled with replacement within each task."""
    scores = np.asarray(scores, dtype=float)
    runs, tasks = scores.shape
    picks = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = scores[picks, np.arange(tasks)].reshape(reps, -1)
    above = (resampled[:, :, None] > np.asarray(taus, dtype=float)).mean(axis=1)  # reps x taus
    low, high = np.percentile(above, compare.PERCENTILES, axis=0)
    return low, high
