"""Paired comparisons with uncertainty: each row against its baseline, seed by seed, and rliable's
aggregates across data sets.

For every data set @ ratio and every row, the difference to the row's baseline (by default the
``none`` row with the same loss and otherwise the same settings; ``--baseline LABEL`` picks
another), over the N seeds both rows ran, for top-1 and for the smallest non-empty shot group:

- the mean difference;
- a 95% paired t interval, mean +- t(0.975, N - 1) * sd / sqrt(N), sd the sample std of the
  differences (with 3 seeds t = 4.30: the interval is wide, and it should look it; a bootstrap over
  3 seeds would be falsely narrow); ``*`` when it excludes zero;
- the probability of improvement as rliable defines it: P(X > Y) + 0.5 P(X = Y) for a run X of the
  row and a run Y of the baseline, over all N x N pairs (the Mann-Whitney U statistic / N^2);
  one task, so no interval;
- the fraction of seeds won: seeds where the row beats the baseline's run of the same seed, ties
  counting one half. A paired statistic, and not rliable's: it differs from the probability of
  improvement whenever a row's worse seed still beats the baseline's better one.

And, per row across all data sets @ ratio of a report (each one a task), as rliable computes them
(Agarwal et al., NeurIPS 2021):

- the interquartile mean (IQM, the 25% trimmed mean over all runs and tasks) of top-1 normalised
  per task by min-max over the row means there (0: the worst row, 1: the best), so every task
  weighs the same, with a 95% stratified-bootstrap percentile interval: runs resampled with
  replacement within each task, 50,000 resamples;
- the probability of improvement over the row's baseline averaged over tasks, with a 95%
  stratified independent bootstrap interval (the row's and the baseline's runs resampled
  independently within each task).

Guarded, because an aggregate over too little is no aggregate: with one data set @ ratio no
aggregate is printed (each row's IQM would be its min-max rank on that one task, and its
P(improvement) the paired comparison's; the per-data-set comparisons are the result, and
comparison_aggregate.csv keeps the point estimates with the reason). With two or more tasks, an
interval is printed only when every task has at least 3 runs of the row (and of its baseline): a
stratified bootstrap of 1 or 2 runs per task draws from 1 or 3 distinct resamples per task, whose
percentiles say nothing about a new set of seeds. Otherwise the point estimate is printed with
"interval not shown: N runs over T tasks".

References (google-research/rliable at 3ccd9f4dea577a04d3d2b557f259aac08badbd81):
``rliable/metrics.py`` (``aggregate_iqm``: ``scipy.stats.trim_mean(scores, 0.25, axis=None)``;
``probability_of_improvement``: ``scipy.stats.mannwhitneyu(x, y, alternative='greater')`` /
(n_x n_y) per task, 0.5 where a task's scores are equal, averaged over tasks) and
``rliable/library.py`` (``get_interval_estimates``: ``reps=50000``,
``confidence_interval_size=0.95``, ``method='percentile'``; a score matrix is resampled by
``StratifiedBootstrap``, a pair of matrices by ``StratifiedIndependentBootstrap``; both draw run
indices of the matrix's shape and index ``scores[indices, task]``). The percentile interval is
arch's ``IIDBootstrap.conf_int`` (bashtage/arch ``arch/bootstrap/base.py``):
``np.percentile(values, [2.5, 97.5])``. rliable itself is not a dependency: its 1.2.0 pins
arch < 8, and arch 7 fails to import with pandas 3. rliable draws from NumPy's global RandomState;
here the draws come from a seeded ``np.random.Generator``, so intervals agree with rliable's in
distribution, not draw by draw.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from scipy import stats

from lt_bench.errors import UserError
from lt_bench.report.typeset import DASH, number, tex

GROUPS = ("few", "medium", "many")  # the smallest non-empty shot group is the first with values
INTERVAL = "95% paired t interval over seeds"
RESAMPLES = 50_000  # rliable's get_interval_estimates(reps=50000)
CONFIDENCE = 0.95  # rliable's confidence_interval_size
PERCENTILES = (100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2)  # 2.5, 97.5
NO_INTERVAL = "interval not shown"
MIN_TASKS = 2  # an aggregate across data sets @ ratio needs at least two of them
MIN_RUNS_PER_TASK = 3  # an interval needs at least 3 runs on every task (module docstring)


def paired_difference(row: np.ndarray, baseline: np.ndarray) -> dict:
    """Over seed pairs (``row[i]`` and ``baseline[i]`` share a seed): the mean difference, its 95%
    paired t interval, rliable's probability of improvement and the fraction of seeds won."""
    row = np.asarray(row, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    diff = row - baseline
    n = len(diff)
    mean = float(diff.mean()) if n else math.nan
    if n >= 2:
        half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n))
        low, high = mean - half, mean + half
    else:
        low = high = math.nan
    improvement = probability_of_improvement(row[:, None], baseline[:, None]) if n else math.nan
    won = float(np.mean((diff > 0) + 0.5 * (diff == 0))) if n else math.nan
    return {
        "n": n,
        "mean": mean,
        "low": low,
        "high": high,
        "p_improvement": improvement,
        "seeds_won": won,
        "excludes_zero": bool(n >= 2 and (low > 0 or high < 0)),
    }


def _baseline_label(runs: pd.DataFrame, label: str, requested: str | None) -> str | None:
    """The baseline row of ``label`` among ``runs`` (one data set): the requested label, or the
    ``none`` row whose settings equal the row's in everything but the method."""
    if requested is not None:
        return requested if requested in set(runs.label) else None
    key = runs.loc[runs.label == label, "baseline_key"].iloc[0]
    candidates = runs[(runs["method.name"] == "none") & (runs.baseline_key == key)]
    labels = list(pd.unique(candidates.label))
    return labels[0] if len(labels) == 1 else None


def smallest_group(runs: pd.DataFrame) -> str | None:
    """The smallest shot group (few, then medium, then many) with a value in some run of
    ``runs``; None when no run has one."""
    for group in GROUPS:
        if group in runs and pd.to_numeric(runs[group], errors="coerce").notna().any():
            return group
    return None


def _check_baseline(done: pd.DataFrame, baseline: str | None) -> None:
    if baseline is not None and baseline not in set(done.label):
        raise UserError(
            f"--baseline {baseline!r} is not a row of this report; rows: {', '.join(sorted(set(done.label)))}"
        )


def comparisons(runs: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One record per (data set, row, metric): the paired difference to the row's baseline."""
    done = runs[runs.status == "done"]
    _check_baseline(done, baseline)
    records = []
    for dataset, subset in done.groupby("dataset", sort=False):
        group = smallest_group(subset)
        for label in pd.unique(subset.label):
            base = _baseline_label(subset, label, baseline)
            if base is None or base == label:
                continue
            for metric in ("top1", group):
                if metric is None:
                    continue
                mine = subset[subset.label == label].set_index("seed")[metric]
                theirs = subset[subset.label == base].set_index("seed")[metric]
                seeds = sorted(set(mine.dropna().index) & set(theirs.dropna().index))
                result = paired_difference(mine[seeds].to_numpy(), theirs[seeds].to_numpy())
                records.append(
                    {
                        "dataset": dataset,
                        "row": label,
                        "baseline": base,
                        "metric": metric,
                        "seeds": json.dumps(seeds),
                        **result,
                    }
                )
    return pd.DataFrame(records)


# ----------------------------------------------------------------------------- rliable's statistics


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of all scores (runs x tasks)."""
    return float(stats.trim_mean(np.asarray(scores).ravel(), proportiontocut=0.25))


def _wins(scores_x: np.ndarray, scores_y: np.ndarray) -> np.ndarray:
    """``wins[i, j, t]``: 1 if run i of X beats run j of Y on task t, 0.5 on a tie, else 0."""
    x = np.asarray(scores_x, dtype=float)[:, None, :]
    y = np.asarray(scores_y, dtype=float)[None, :, :]
    return (x > y) + 0.5 * (x == y)


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """rliable's probability of improvement of X over Y (runs x tasks each, runs may differ):
    per task P(X > Y) + 0.5 P(X = Y) over all pairs of runs, averaged over tasks."""
    return float(_wins(scores_x, scores_y).mean(axis=(0, 1)).mean())


def _percentile_interval(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values, PERCENTILES)
    return float(low), float(high)


def stratified_bootstrap_iqm(
    scores: np.ndarray, reps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% percentile interval of the IQM of ``scores`` (runs x tasks), resampling runs with
    replacement within each task, as rliable's StratifiedBootstrap does."""
    scores = np.asarray(scores, dtype=float)
    runs, tasks = scores.shape
    picks = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = scores[picks, np.arange(tasks)]  # resampled[r, i, t] = scores[picks[r, i, t], t]
    values = stats.trim_mean(resampled.reshape(reps, -1), proportiontocut=0.25, axis=1)
    return _percentile_interval(values)


def _pick_counts(picks: np.ndarray, runs: int) -> np.ndarray:
    """How often each run is drawn: ``picks`` (reps x runs x tasks) -> counts (reps x tasks x runs)."""
    reps, _, tasks = picks.shape
    cell = (np.arange(reps)[:, None, None] * tasks + np.arange(tasks)) * runs
    return np.bincount((cell + picks).ravel(), minlength=reps * tasks * runs).reshape(
        reps, tasks, runs
    )


def stratified_independent_bootstrap_improvement(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% percentile interval of the probability of improvement of X over Y, resampling the runs
    of X and of Y independently within each task, as rliable's StratifiedIndependentBootstrap
    does. A resample's value is counts_x^T wins counts_y per task, which is the mean of ``wins``
    over the resampled pairs without building them."""
    wins = _wins(scores_x, scores_y)  # runs_x x runs_y x tasks
    runs_x, runs_y, tasks = wins.shape
    counts_x = _pick_counts(rng.integers(0, runs_x, size=(reps, runs_x, tasks)), runs_x)
    counts_y = _pick_counts(rng.integers(0, runs_y, size=(reps, runs_y, tasks)), runs_y)
    per_task = np.einsum("rti,ijt,rtj->rt", counts_x, wins, counts_y, optimize=True)
    return _percentile_interval(per_task.mean(axis=1) / (runs_x * runs_y))


def _no_interval(runs_per_task: int, tasks: int) -> str | None:
    """Why no interval is printed (too few tasks or runs per task: module docstring), or None."""
    if tasks < MIN_TASKS or runs_per_task < MIN_RUNS_PER_TASK:
        runs = runs_per_task * tasks
        return f"{NO_INTERVAL}: {runs} run{'s' * (runs != 1)} over {tasks} task{'s' * (tasks != 1)}"
    return None


def score_matrix(done: pd.DataFrame, label: str, tasks: list[str], column: str = "top1"):
    """The runs x tasks matrix of ``label`` (runs in seed order), or None where the row misses a
    task or has uneven run counts (rliable's matrices need the same runs on every task)."""
    mine = done[done.label == label]
    counts = mine.groupby("dataset").size().reindex(tasks)
    if counts.isna().any() or counts.nunique() != 1:
        return None
    columns = [mine[mine.dataset == t].sort_values("seed")[column].to_numpy() for t in tasks]
    return np.stack(columns, axis=1).astype(float)


def aggregate_iqm(runs: pd.DataFrame, reps: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Per row: IQM of min-max-normalised top-1 over all its runs on all data sets @ ratio, with a
    95% stratified-bootstrap interval. A row needs the same number of seeds on every task; rows
    missing a task or with uneven seeds are left out, with the reason."""
    done = runs.loc[runs.status == "done", ["dataset", "label", "seed", "top1"]]
    tasks = list(pd.unique(done.dataset))
    means = done.groupby(["dataset", "label"]).top1.mean()
    worst = means.groupby(level=0).min()
    span = (means.groupby(level=0).max() - worst).replace(0, 1.0)
    rng = np.random.default_rng(seed)
    records = []
    for label in pd.unique(done.label):
        matrix = score_matrix(done, label, tasks)
        if matrix is None:
            note = "not run with the same number of seeds on every data set @ ratio"
            records.append({"row": label, "iqm": math.nan, "iqm_low": math.nan,
                            "iqm_high": math.nan, "note": note})  # fmt: skip
            continue
        matrix = (matrix - worst[tasks].to_numpy()) / span[tasks].to_numpy()
        note = _no_interval(matrix.shape[0], len(tasks))
        low, high = (math.nan, math.nan) if note else stratified_bootstrap_iqm(matrix, reps, rng)
        record = {"row": label, "iqm": iqm(matrix), "iqm_low": low, "iqm_high": high}
        records.append({**record, "runs": int(matrix.size), "tasks": len(tasks), "note": note})
    return pd.DataFrame(records)


def aggregate_improvement(
    runs: pd.DataFrame, baseline: str | None = None, reps: int = RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """Per row: rliable's probability of improvement of top-1 over the row's baseline (the row
    the comparison table pairs it with), averaged over the data sets @ ratio where both ran, with
    a 95% stratified independent bootstrap interval. Rows without a baseline, and the baselines
    themselves, get no record; uneven run counts across tasks leave the row out, with the reason."""
    columns = ["dataset", "label", "seed", "top1", "method.name", "baseline_key"]
    done = runs.loc[runs.status == "done", columns]  # only these: filtering all columns is slow
    _check_baseline(done, baseline)
    pairs: dict[str, list[tuple[str, str]]] = {}  # row -> [(task, baseline row)]
    for task, subset in done.groupby("dataset", sort=False):
        for label in pd.unique(subset.label):
            base = _baseline_label(subset, label, baseline)
            if base is not None and base != label:
                pairs.setdefault(label, []).append((task, base))
    rng = np.random.default_rng(seed)
    records = []
    for label, tasks_and_bases in pairs.items():
        tasks = [task for task, _ in tasks_and_bases]
        bases = list(dict.fromkeys(base for _, base in tasks_and_bases))
        mine = score_matrix(done, label, tasks)
        theirs = [score_matrix(done, base, [task]) for task, base in tasks_and_bases]
        record = {"row": label, "baseline": " / ".join(bases), "tasks": len(tasks)}
        if mine is None or any(m is None for m in theirs) or len({len(m) for m in theirs}) != 1:
            note = "not run with the same number of seeds on every data set @ ratio"
            records.append({**record, "p_improvement": math.nan, "low": math.nan,
                            "high": math.nan, "note": note})  # fmt: skip
            continue
        theirs = np.concatenate(theirs, axis=1)
        note = _no_interval(min(len(mine), len(theirs)), len(tasks))
        low, high = (
            (math.nan, math.nan)
            if note
            else stratified_independent_bootstrap_improvement(mine, theirs, reps, rng)
        )
        records.append(
            {
                **record,
                "p_improvement": probability_of_improvement(mine, theirs),
                "low": low,
                "high": high,
                "runs": int(mine.size),
                "baseline_runs": int(theirs.size),
                "note": note,
            }
        )
    return pd.DataFrame(records)


def aggregates(
    runs: pd.DataFrame, baseline: str | None = None, reps: int = RESAMPLES, seed: int = 0
) -> pd.DataFrame:
    """Per row, across all data sets @ ratio: the IQM of normalised top-1 (``aggregate_iqm``) and
    the probability of improvement over the row's baseline (``aggregate_improvement``), each with
    its 95% stratified-bootstrap interval. One frame, ``comparison_aggregate.csv``."""
    scores = aggregate_iqm(runs, reps, seed)
    improvement = aggregate_improvement(runs, baseline, reps, seed)
    if improvement.empty:
        return scores
    improvement = improvement.rename(
        columns={
            "low": "p_improvement_low",
            "high": "p_improvement_high",
            "tasks": "improvement_tasks",
            "runs": "improvement_runs",
            "note": "improvement_note",
        }
    )
    return scores.merge(improvement, on="row", how="left")


# ----------------------------------------------------------------------------- rendering


def _pp(value: float) -> str:
    return number(100 * value, 1, plus=True)


def _interval(record) -> str:
    if math.isnan(record.low):
        return f"{DASH} (1 seed)"
    return f"[{_pp(record.low)}, {_pp(record.high)}]"


def _fraction(value: float) -> str:
    return number(value, 2)


HEADER = [
    "Data set",
    "Row",
    "Baseline",
    "Metric",
    "Δ (pp)",
    "95% CI (paired t)",
    "P(improvement)",
    "Seeds won",
    "Seeds",
]

CAPTION = (
    "Paired differences to each row's baseline over the N seeds both rows ran (Seeds), in "
    "percentage points. Δ: the mean difference. 95% CI: the "
    f"{INTERVAL}, mean ± t(0.975, N - 1) · sd / √N, sd the sample std of the differences (with 3 "
    "seeds it is wide); `*`: the interval excludes zero. P(improvement): rliable's probability of "
    "improvement on this data set @ ratio, P(X > Y) + ½ P(X = Y) over all N × N pairs of a run X "
    "of the row and a run Y of the baseline (one task: no interval). Seeds won: the fraction of "
    "seeds where the row beats the baseline's run of the same seed, ties count half (not the "
    "probability of improvement). The second metric is the smallest non-empty shot group."
)

AGGREGATE_CAPTION = (
    "Across all data sets @ ratio (each a task), as rliable computes them: the interquartile mean "
    "(IQM: the 25% trimmed mean over all runs and tasks) of top-1 normalised per task (min-max "
    "over the row means: 0 the worst row, 1 the best), and the probability of improvement over "
    "the row's baseline averaged over the tasks both ran. 95% CI: stratified-bootstrap percentile "
    f"interval, {RESAMPLES:,} resamples of the runs within each task (for P(improvement), the "
    "row's and the baseline's runs resampled independently), shown only with at least "
    f"{MIN_TASKS} tasks and {MIN_RUNS_PER_TASK} runs on each (fewer: the point estimate, and "
    "how many runs and tasks it rests on)."
)

ONE_TASK = (
    "No aggregate across data sets @ ratio: these runs have one ({tasks}), and an aggregate over "
    f"fewer than {MIN_TASKS} would restate the paired comparisons above (comparison_aggregate.csv "
    "keeps its point estimates)."
)


def _aggregate_cells(record: dict) -> list[str]:
    """One row of the aggregate table: point estimates, and each interval or why it is not shown."""

    def value(x) -> str:
        return DASH if x is None or (isinstance(x, float) and math.isnan(x)) else number(x, 3)

    def interval(low, high, note) -> str:
        if not (low is None or math.isnan(low)):
            return f"[{number(low, 3)}, {number(high, 3)}]"
        if not isinstance(note, str) or not note:
            return DASH
        return note if note.startswith(NO_INTERVAL) else f"{DASH} ({note})"

    runs = record.get("runs")
    cells = [
        record["row"],
        value(record["iqm"]),
        interval(record["iqm_low"], record["iqm_high"], record.get("note")),
        DASH if runs is None or math.isnan(runs) else str(int(runs)),
    ]
    if "p_improvement" in record:
        base = record.get("baseline")
        cells += [
            base if isinstance(base, str) else DASH,
            value(record["p_improvement"]),
            interval(
                record["p_improvement_low"],
                record["p_improvement_high"],
                record.get("improvement_note") if isinstance(base, str) else None,
            ),
        ]
    return cells


def _cells(record, columns: dict) -> list[str]:
    star = "*" if record.excludes_zero else ""
    return [
        columns.get(record.dataset, record.dataset),
        record.row,
        record.baseline,
        "top-1" if record.metric == "top1" else record.metric,
        _pp(record.mean) + star,
        _interval(record),
        _fraction(record.p_improvement),
        _fraction(record.seeds_won),
        str(record.n),
    ]


def comparison_markdown(
    table: pd.DataFrame, aggregate: pd.DataFrame, columns: dict | None = None, tasks: int = 0
) -> str:
    """The paired comparisons and, with at least :data:`MIN_TASKS` tasks (``tasks``: how many the
    runs have; 0: counted from ``aggregate``), the aggregate table; ``columns``: data set @ ratio
    -> display name."""
    columns = columns or {}
    lines = [CAPTION, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(r, columns)) + " |" for r in table.itertuples()]
    if table.empty:
        lines.append("| " + " | ".join([DASH] * len(HEADER)) + " |")
    tasks = tasks or _tasks(table, aggregate)
    if tasks < MIN_TASKS:
        shown = ", ".join(columns.get(d, d) for d in pd.unique(table.get("dataset", pd.Series([]))))
        lines += ["", ONE_TASK.format(tasks=shown or f"{tasks}")]
        return "\n".join(lines) + "\n"
    header = ["Row", "IQM", "95% CI", "Runs"]
    if "p_improvement" in aggregate:
        header += ["Baseline", "P(improvement)", "95% CI"]
    lines += [
        "",
        AGGREGATE_CAPTION,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for record in aggregate.to_dict("records"):
        lines.append("| " + " | ".join(_aggregate_cells(record)) + " |")
    return "\n".join(lines) + "\n"


def _tasks(table: pd.DataFrame, aggregate: pd.DataFrame) -> int:
    """How many data sets @ ratio the aggregate is over (else the comparisons are)."""
    if "tasks" in aggregate:
        counts = pd.to_numeric(aggregate["tasks"], errors="coerce").dropna()
        if not counts.empty:
            return int(counts.max())
    return int(table["dataset"].nunique()) if "dataset" in table else 0


def comparison_latex(table: pd.DataFrame, columns: dict | None = None) -> str:
    """The paired comparisons as a booktabs tabular (what each column is: % comments under it)."""
    columns = columns or {}
    lines = [r"\begin{tabular}{llllrlrrr}", r"\toprule", " & ".join(map(tex, HEADER)) + r" \\"]
    lines.append(r"\midrule")
    lines += [" & ".join(tex(c) for c in _cells(r, columns)) + r" \\" for r in table.itertuples()]
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        f"% {INTERVAL} (mean +- t(0.975, N-1) sd / sqrt N); *: the interval excludes zero",
        "% P(improvement): rliable's probability of improvement, P(X > Y) + 0.5 P(X = Y) over all "
        "pairs of a row run X and a baseline run Y on this data set @ ratio",
        "% Seeds won: fraction of seeds where the row beats the baseline's run of the same seed, "
        "ties half",
    ]
    return "\n".join(lines) + "\n"
