"""Paired comparisons with uncertainty: each row against its baseline, seed by seed.

For every data set @ ratio and every row, the difference to the row's baseline (by default the
``none`` row with the same loss and otherwise the same settings; ``--baseline LABEL`` picks
another), paired by seed, for top-1 and for the smallest non-empty shot group:

- the mean difference over the seeds both rows ran;
- a 95% paired t interval, mean +- t(0.975, n - 1) * sd / sqrt(n) (with 3 seeds t = 4.30: the
  interval is wide, and it should look it; a bootstrap over 3 seeds would be falsely narrow);
- the probability of improvement: the fraction of seeds where the row beats the baseline, ties
  counting one half (rliable's statistic, paired by seed);
- ``*`` when the interval excludes zero.

And, per row across all data sets and ratios of a report, the interquartile mean (IQM) of
normalised top-1 with a 95% stratified-bootstrap interval, as rliable computes them (Agarwal et
al., NeurIPS 2021): runs are resampled with replacement within each task, the IQM (25% trimmed
mean over all runs and tasks) is taken of each resample, and the interval is the 2.5 and 97.5
percentiles. Top-1 is normalised per data set @ ratio by min-max over the row means there (0: the
worst row, 1: the best), so every task weighs the same. (rliable itself is not a dependency: its
1.2.0 pins arch < 8, and arch 7 fails to import with pandas 3.)
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from scipy import stats

from lt_bench.errors import UserError

GROUPS = ("few", "medium", "many")  # the smallest non-empty shot group is the first with values
INTERVAL = "95% paired t interval over seeds"


def paired_difference(row: np.ndarray, baseline: np.ndarray) -> dict:
    """Mean difference, 95% paired t interval and probability of improvement of seed pairs."""
    diff = np.asarray(row, dtype=float) - np.asarray(baseline, dtype=float)
    n = len(diff)
    mean = float(diff.mean()) if n else math.nan
    if n >= 2:
        half = float(stats.t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n))
        low, high = mean - half, mean + half
    else:
        low = high = math.nan
    improvement = float(np.mean((diff > 0) + 0.5 * (diff == 0))) if n else math.nan
    excludes_zero = bool(n >= 2 and (low > 0 or high < 0))
    return {
        "n": n,
        "mean": mean,
        "low": low,
        "high": high,
        "p_improvement": improvement,
        "excludes_zero": excludes_zero,
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
    for group in GROUPS:
        if group in runs and pd.to_numeric(runs[group], errors="coerce").notna().any():
            return group
    return None


def comparisons(runs: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One record per (data set, row, metric): the paired difference to the row's baseline."""
    done = runs[runs.status == "done"]
    if baseline is not None and baseline not in set(done.label):
        raise UserError(
            f"--baseline {baseline!r} is not a row of this report; rows: {', '.join(sorted(set(done.label)))}"
        )
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


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of all scores (runs x tasks)."""
    return float(stats.trim_mean(np.asarray(scores).ravel(), proportiontocut=0.25))


def stratified_bootstrap_iqm(
    scores: np.ndarray, reps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% percentile interval of the IQM of ``scores`` (runs x tasks), resampling runs with
    replacement within each task (column)."""
    runs, tasks = scores.shape
    picks = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(np.broadcast_to(scores, (reps, runs, tasks)), picks, axis=1)
    values = stats.trim_mean(resampled.reshape(reps, -1), proportiontocut=0.25, axis=1)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def aggregate_iqm(runs: pd.DataFrame, reps: int = 5000, seed: int = 0) -> pd.DataFrame:
    """Per row: IQM of min-max-normalised top-1 over all its runs on all data sets @ ratio, with a
    95% stratified-bootstrap interval. A row needs the same number of seeds on every task; rows
    missing a task or with uneven seeds are left out, with the reason."""
    done = runs[runs.status == "done"]
    tasks = list(pd.unique(done.dataset))
    means = done.groupby(["dataset", "label"]).top1.mean()
    low = means.groupby(level=0).min()
    span = (means.groupby(level=0).max() - low).replace(0, 1.0)
    scores, skipped = {}, {}
    for label in pd.unique(done.label):
        mine = done[done.label == label]
        counts = mine.groupby("dataset").size().reindex(tasks)
        if counts.isna().any() or counts.nunique() != 1:
            skipped[label] = "not run with the same number of seeds on every data set @ ratio"
            continue
        columns = [
            ((mine[mine.dataset == t].sort_values("seed").top1 - low[t]) / span[t]).to_numpy()
            for t in tasks
        ]
        scores[label] = np.stack(columns, axis=1)  # runs x tasks
    records = []
    rng = np.random.default_rng(seed)
    for label, matrix in scores.items():
        low, high = stratified_bootstrap_iqm(matrix, reps, rng)
        records.append(
            {
                "row": label,
                "iqm": iqm(matrix),
                "low": low,
                "high": high,
                "runs": int(matrix.size),
                "tasks": len(tasks),
            }
        )
    for label, reason in skipped.items():
        records.append(
            {"row": label, "iqm": math.nan, "low": math.nan, "high": math.nan, "note": reason}
        )
    return pd.DataFrame(records)


# ----------------------------------------------------------------------------- rendering


def _pp(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:+.1f}"


def _interval(record) -> str:
    if math.isnan(record.low):
        return "– (1 seed)"
    return f"[{100 * record.low:+.1f}, {100 * record.high:+.1f}]"


HEADER = [
    "Data set",
    "Row",
    "Baseline",
    "Metric",
    "Δ (pp)",
    "95% CI (paired t)",
    "P(improve)",
    "Seeds",
]


def _cells(record) -> list[str]:
    star = "*" if record.excludes_zero else ""
    return [
        record.dataset,
        record.row,
        record.baseline,
        "top-1" if record.metric == "top1" else record.metric,
        _pp(record.mean) + star,
        _interval(record),
        "–" if math.isnan(record.p_improvement) else f"{record.p_improvement:.2f}",
        str(record.n),
    ]


def comparison_markdown(table: pd.DataFrame, aggregate: pd.DataFrame) -> str:
    lines = [
        "Paired differences to each row's baseline, seed by seed, in percentage points: mean, "
        f"{INTERVAL} (t with n - 1 degrees of freedom; with 3 seeds it is wide), and the "
        "probability of improvement (the fraction of seeds where the row beats the baseline, ties "
        "count half). `*`: the interval excludes zero. The second metric is the smallest "
        "non-empty shot group.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in table.itertuples()]
    if table.empty:
        lines.append("| " + " | ".join(["–"] * len(HEADER)) + " |")
    lines += [
        "",
        "Across all data sets and ratios: interquartile mean of top-1 normalised per data set @ "
        "ratio (min-max over the row means: 0 the worst row, 1 the best), with a 95% "
        "stratified-bootstrap interval (runs resampled within each task, as rliable does).",
        "",
        "| Row | IQM | 95% CI | Runs |",
        "|---|---|---|---|",
    ]
    for r in aggregate.itertuples():
        if math.isnan(r.iqm):
            lines.append(f"| {r.row} | – | {getattr(r, 'note', '')} | – |")
        else:
            lines.append(f"| {r.row} | {r.iqm:.3f} | [{r.low:.3f}, {r.high:.3f}] | {r.runs} |")
    return "\n".join(lines) + "\n"


def comparison_latex(table: pd.DataFrame) -> str:
    def tex(text: str) -> str:
        return (
            str(text).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
            .replace("Δ", r"$\Delta$").replace("–", "--")
        )  # fmt: skip

    lines = [r"\begin{tabular}{llllrlrr}", r"\toprule", " & ".join(map(tex, HEADER)) + r" \\"]
    lines.append(r"\midrule")
    lines += [" & ".join(tex(c) for c in _cells(r)) + r" \\" for r in table.itertuples()]
    lines += [r"\bottomrule", r"\end{tabular}", f"% {INTERVAL}; *: the interval excludes zero"]
    return "\n".join(lines) + "\n"
